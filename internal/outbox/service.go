package outbox

import (
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/lintel/lintel/internal/config"
	"github.com/lintel/lintel/internal/sealer"
	"github.com/lintel/lintel/internal/store"
)

// TLS modes of the SMTP connection.
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses to send
	// when the server does not offer it.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "tls"
	// TLSNone sends in clear. It is meant for a relay on the same machine
	// (loopback), and AUTH is only sent to a loopback address in this mode.
	TLSNone = "none"
)

// Config tells the service where and how to send.
type Config struct {
	// Addr is the SMTP server's host:port; empty holds every message in
	// the outbox (HELD) and logs it.
	Addr string
	// TLS is TLSStartTLS (the default when empty), TLSImplicit or TLSNone.
	TLS string
	// Username and Password authenticate with AUTH PLAIN; an empty
	// Username sends without AUTH.
	Username, Password string
	// From is the From address, e.g. "Lintel <no-reply@example.org>".
	From string
	// RootCAs verify the server's certificate; nil means the system's.
	RootCAs *x509.CertPool

	// BaseRetry is the delay after a first temporary failure; it doubles
	// with every further one, up to MaxRetry.
	BaseRetry, MaxRetry time.Duration
	// MaxAttempts ends a message in FAILED after this many temporary
	// failures.
	MaxAttempts int
	// Timeout bounds connecting to the server (TLS and AUTH included) and,
	// separately, delivering each message.
	Timeout time.Duration
	// JobTimeout bounds one run of the send job; keep it below River's
	// stuck-job rescue interval. Messages still due when it nears are left
	// to the next run.
	JobTimeout time.Duration
}

// DefaultFrom is the From address when none is configured.
const DefaultFrom = "Lintel <no-reply@lintel.local>"

func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.BaseRetry <= 0 {
		c.BaseRetry = 30 * time.Second
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = time.Hour
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 15 * time.Minute
	}
	return c
}

// ConfigFrom takes the SMTP settings from the server's configuration and
// checks them: the TLS mode, the From address, the CA file (loaded in
// addition to the system's roots), and that AUTH is never configured to be
// sent in clear to another machine.
func ConfigFrom(c *config.Config) (Config, error) {
	out := Config{Addr: c.SMTPAddr, TLS: c.SMTPTLS, Username: c.SMTPUsername, Password: c.SMTPPassword, From: c.SMTPFrom}.withDefaults()
	switch out.TLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return Config{}, fmt.Errorf("--smtp-tls / LINTEL_SMTP_TLS: %q is not starttls, tls or none", out.TLS)
	}
	if _, err := mail.ParseAddress(out.From); err != nil {
		return Config{}, fmt.Errorf("--smtp-from / LINTEL_SMTP_FROM: %q is not an address: %w", out.From, err)
	}
	if out.Addr != "" {
		host, port, err := net.SplitHostPort(out.Addr)
		if err != nil || host == "" || port == "" {
			return Config{}, fmt.Errorf("--smtp-addr / LINTEL_SMTP_ADDR: %q is not host:port", out.Addr)
		}
		if out.TLS == TLSNone && out.Username != "" && !isLoopback(host) {
			return Config{}, fmt.Errorf("--smtp-username with --smtp-tls=none would send the password in clear to %s: use starttls or tls, or a relay on loopback", host)
		}
	}
	if c.SMTPCAFile != "" {
		pem, err := os.ReadFile(c.SMTPCAFile)
		if err != nil {
			return Config{}, fmt.Errorf("--smtp-ca-file / LINTEL_SMTP_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return Config{}, fmt.Errorf("--smtp-ca-file / LINTEL_SMTP_CA_FILE: %s holds no PEM certificate", c.SMTPCAFile)
		}
		out.RootCAs = pool
	}
	return out, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Service writes, sends and lists e-mail.
type Service struct {
	db     *store.DB
	sealer *sealer.Sealer
	cfg    Config
	log    *slog.Logger
	river  *river.Client[*sql.Tx]

	from    *mail.Address
	fromErr error
}

// New returns the service. s seals and opens links; it may be nil for a
// service that only lists messages without their links.
func New(db *store.DB, s *sealer.Sealer, cfg Config, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	svc := &Service{db: db, sealer: s, cfg: cfg, log: log}
	svc.from, svc.fromErr = mail.ParseAddress(cfg.From)
	if svc.fromErr != nil {
		svc.fromErr = fmt.Errorf("the From address %q is not an address: %w", cfg.From, svc.fromErr)
	}
	return svc
}

// SetQueue gives the service the River client that runs the send job (the
// client needs the service's worker first, hence the two steps).
func (s *Service) SetQueue(c *river.Client[*sql.Tx]) { s.river = c }

// Kick starts sending at once; call it after committing a transaction
// that wrote messages. Kicks while a send job is queued or running add no
// job. A failure is only logged: the periodic job sends the messages
// anyway, within half a minute.
func (s *Service) Kick(ctx context.Context) {
	if s.river == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.river.Insert(ctx, SendArgs{}, nil); err != nil {
		s.log.WarnContext(ctx, "outbox: could not queue the send job; the periodic job will send", "err", err)
	}
}
