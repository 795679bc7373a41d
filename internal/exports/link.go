package exports

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/apperr"
)

// linkLabel separates the export-link key from the access-token key it is
// derived from, so a MAC made for one purpose is useless for the other.
const linkLabel = "lintel export download link v1"

// DeriveLinkKey derives the key that signs download links from the
// server's access-token signing key. Every replica shares that key (it is
// configured or stored in the database), so a link made by one replica is
// honoured by all, and no second secret needs managing.
func DeriveLinkKey(accessTokenKey []byte) []byte {
	m := hmac.New(sha256.New, accessTokenKey)
	m.Write([]byte(linkLabel))
	return m.Sum(nil)
}

// Links makes and checks signed download links: an HMAC-SHA256 over the
// export ID, its organisation and the expiry. A link works without any
// other credential (a browser can follow it), so it is short-lived.
type Links struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewLinks returns links signed with key that stay valid for ttl.
func NewLinks(key []byte, ttl time.Duration) *Links {
	return &Links{key: key, ttl: ttl, now: time.Now}
}

func (l *Links) mac(id, org uuid.UUID, expires int64) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(id.String()))
	m.Write([]byte{0})
	m.Write([]byte(org.String()))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// Sign returns the path of a download link for export id of org that
// expires at the given instant (whole seconds).
func (l *Links) Sign(id, org uuid.UUID, expires time.Time) string {
	exp := expires.Unix()
	q := url.Values{}
	q.Set("org", org.String())
	q.Set("expires", strconv.FormatInt(exp, 10))
	q.Set("sig", base64.RawURLEncoding.EncodeToString(l.mac(id, org, exp)))
	return "/exports/" + id.String() + "/download?" + q.Encode()
}

// link returns a fresh link for an export whose file is kept until
// fileExpires (nil: no limit), and when it stops working.
func (l *Links) link(id, org uuid.UUID, fileExpires *time.Time) (string, time.Time) {
	exp := l.now().Add(l.ttl).Truncate(time.Second)
	if fileExpires != nil && fileExpires.Before(exp) {
		exp = fileExpires.Truncate(time.Second)
	}
	return l.Sign(id, org, exp), exp
}

// errBadLink is all a caller learns about a link that is not valid:
// tampered, expired or malformed alike.
var errBadLink = apperr.New(apperr.Forbidden, "the download link is invalid or has expired")

// Verify checks a link's query for export id and returns the organisation
// it was signed for. Any problem is FORBIDDEN, whatever it is.
func (l *Links) Verify(id uuid.UUID, q url.Values) (uuid.UUID, error) {
	org, err := uuid.Parse(q.Get("org"))
	if err != nil {
		return uuid.Nil, errBadLink
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return uuid.Nil, errBadLink
	}
	sig, err := base64.RawURLEncoding.DecodeString(q.Get("sig"))
	if err != nil || !hmac.Equal(sig, l.mac(id, org, exp)) {
		return uuid.Nil, errBadLink
	}
	if !l.now().Before(time.Unix(exp, 0)) {
		return uuid.Nil, errBadLink
	}
	return org, nil
}
