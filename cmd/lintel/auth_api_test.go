package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
)

const loginMutation = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken accessTokenExpiresAt operator { email role organisation { name } } } }`

func TestLogin(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	s.operator(org, "ops@acme.test", caller.RoleOperator)
	anon := s.anonymous()

	t.Run("the right password opens a session naming the operator", func(t *testing.T) {
		res := anon.do(loginMutation, vars{"e": "OPS@acme.test ", "p": testPassword}).requireOK(t)
		require.Equal(t, "ops@acme.test", res.str("login.operator.email"), "e-mail is matched case-insensitively")
		require.Equal(t, "OPERATOR", res.str("login.operator.role"))
		require.Equal(t, "Acme", res.str("login.operator.organisation.name"))
		exp, err := time.Parse(time.RFC3339, res.str("login.accessTokenExpiresAt"))
		require.NoError(t, err)
		require.WithinDuration(t, time.Now().Add(15*time.Minute), exp, time.Minute)
		me := &gqlClient{t: t, URL: anon.URL, http: anon.http, Token: res.str("login.accessToken")}
		require.Equal(t, "ops@acme.test", me.do(`{ me { email } }`, nil).requireOK(t).str("me.email"))
	})
	t.Run("a wrong password and an unknown account get the same answer", func(t *testing.T) {
		wrong := anon.do(loginMutation, vars{"e": "ops@acme.test", "p": "not the password"}).requireCode(t, "UNAUTHENTICATED")
		unknown := anon.do(loginMutation, vars{"e": "nobody@acme.test", "p": "not the password"}).requireCode(t, "UNAUTHENTICATED")
		require.Equal(t, wrong.Message, unknown.Message)
	})
}

func TestLoginThrottling(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	s.operator(org, "victim@acme.test", caller.RoleViewer)
	anon := s.anonymous()

	t.Run("five failures lock the account, even against the right password", func(t *testing.T) {
		for range 5 {
			anon.do(loginMutation, vars{"e": "victim@acme.test", "p": "guess"}).requireCode(t, "UNAUTHENTICATED")
		}
		e := anon.do(loginMutation, vars{"e": "victim@acme.test", "p": testPassword}).requireCode(t, "RATE_LIMITED")
		require.Greater(t, e.Extensions["retryAfterSeconds"], float64(0))
	})
	t.Run("an operator resetting the password lifts the lock", func(t *testing.T) {
		require.NoError(t, s.Auth.SetPassword(context.Background(), "victim@acme.test", testPassword))
		anon.do(loginMutation, vars{"e": "victim@acme.test", "p": testPassword}).requireOK(t)
	})
}

func TestLoginThrottlingPerAddress(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	s.operator(org, "real@acme.test", caller.RoleViewer)
	anon := s.anonymous()
	// Spraying many accounts from one address trips the address limit even
	// though no single account reaches its own.
	for i := range auth.DefaultConfig().MaxFailuresPerAddress {
		anon.do(loginMutation, vars{"e": strings.Repeat("x", i+1) + "@acme.test", "p": "guess"}).requireCode(t, "UNAUTHENTICATED")
	}
	anon.do(loginMutation, vars{"e": "real@acme.test", "p": testPassword}).requireCode(t, "RATE_LIMITED")
}

const refreshMutation = `mutation($r: String!) { refreshToken(refreshToken: $r) { accessToken refreshToken } }`

func TestRefreshTokens(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	c := s.operator(org, "ops@acme.test", caller.RoleOperator)
	anon := s.anonymous()

	first := c.RefreshToken
	res := anon.do(refreshMutation, vars{"r": first}).requireOK(t)
	second := res.str("refreshToken.refreshToken")
	require.NotEqual(t, first, second, "refresh tokens rotate")
	require.NotEmpty(t, res.str("refreshToken.accessToken"))

	t.Run("a used refresh token is refused and revokes the whole login", func(t *testing.T) {
		anon.do(refreshMutation, vars{"r": first}).requireCode(t, "UNAUTHENTICATED")
		anon.do(refreshMutation, vars{"r": second}).requireCode(t, "UNAUTHENTICATED")
	})
	t.Run("logout revokes the login and says so only once", func(t *testing.T) {
		other := s.anonymous()
		login := other.do(loginMutation, vars{"e": "ops@acme.test", "p": testPassword}).requireOK(t)
		rt := login.str("login.refreshToken")
		require.Equal(t, true, other.do(`mutation($r: String!) { logout(refreshToken: $r) }`, vars{"r": rt}).requireOK(t).get("logout"))
		other.do(refreshMutation, vars{"r": rt}).requireCode(t, "UNAUTHENTICATED")
		other.do(`mutation($r: String!) { logout(refreshToken: $r) }`, vars{"r": rt}).requireCode(t, "UNAUTHENTICATED")
	})
	t.Run("a made-up refresh token is refused", func(t *testing.T) {
		anon.do(refreshMutation, vars{"r": "bm90IGEgdG9rZW4"}).requireCode(t, "UNAUTHENTICATED")
	})
}

func TestAccessTokensAreVerifiedStrictly(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, nil)
	org := s.org("Acme")
	c := s.operator(org, "admin@acme.test", caller.RoleAdmin)

	parsed, _, err := jwt.NewParser().ParseUnverified(c.Token, jwt.MapClaims{})
	require.NoError(t, err)
	claims := parsed.Claims.(jwt.MapClaims)
	sign := func(method jwt.SigningMethod, key any, mutate func(jwt.MapClaims)) string {
		cl := jwt.MapClaims{}
		for k, v := range claims {
			cl[k] = v
		}
		mutate(cl)
		tok, err := jwt.NewWithClaims(method, cl).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	otherKey := []byte("an entirely different signing key of 32+ bytes")
	cases := []struct {
		name  string
		token string
	}{
		{"a token signed with another key", sign(jwt.SigningMethodHS256, otherKey, func(jwt.MapClaims) {})},
		{"an unsigned token (alg none)", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, func(jwt.MapClaims) {})},
		{"a token whose signature was cut off", c.Token[:strings.LastIndexByte(c.Token, '.')+1]},
		{"a token with its role raised but the old signature", func() string {
			parts := strings.Split(c.Token, ".")
			forged := sign(jwt.SigningMethodHS256, otherKey, func(m jwt.MapClaims) { m["role"] = "GATEWAY" })
			return strings.Join([]string{parts[0], strings.Split(forged, ".")[1], parts[2]}, ".")
		}()},
		{"garbage", "not-a-jwt"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is refused with 401", func(t *testing.T) {
			forged := &gqlClient{t: t, URL: c.URL, http: c.http, Token: tc.token}
			res := forged.do(`{ me { email } }`, nil)
			require.Equal(t, http.StatusUnauthorized, res.Status)
			res.requireCode(t, "UNAUTHENTICATED")
		})
	}
	t.Run("an Authorization header that is not a Bearer token is refused", func(t *testing.T) {
		forged := &gqlClient{t: t, URL: c.URL, http: c.http}
		req, _ := http.NewRequest(http.MethodPost, c.URL, strings.NewReader(`{"query":"{ me { email } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
		res := forged.post(req)
		require.Equal(t, http.StatusUnauthorized, res.Status)
	})
}
