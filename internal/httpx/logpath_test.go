package httpx

import "testing"

func TestInvitationTokensNeverReachTheLog(t *testing.T) {
	for path, want := range map[string]string{
		"/wallet/invite/abcDEF123_-xyz":       "/wallet/invite/[token]",
		"/wallet/invite/abcDEF123_-xyz/photo": "/wallet/invite/[token]/photo",
		"/wallet/":                            "/wallet/",
		"/records/42/photo":                   "/records/42/photo",
	} {
		if got := loggedPath(path); got != want {
			t.Errorf("loggedPath(%q) = %q, want %q", path, got, want)
		}
	}
}
