package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// failure is why a message was not sent.
type failure struct {
	err error
	// permanent failures end the message in FAILED; others are retried.
	permanent bool
	// setup failures concern the server or the configuration, not the
	// message: the run stops instead of trying every due message against a
	// server that will not take any.
	setup bool
}

func (f *failure) Error() string { return f.err.Error() }

// session is one SMTP connection, reused for the messages of a send run.
type session struct {
	raw    net.Conn // the TCP connection, closed to abort
	client *smtp.Client
	sent   int
}

// maxPerSession caps how many messages one connection carries before it is
// renewed (servers limit transactions per connection).
const maxPerSession = 100

// dial connects, upgrades to TLS as configured and authenticates, within
// the configured timeout. Its failures are all setup failures.
func (s *Service) dial(ctx context.Context) (*session, *failure) {
	if s.fromErr != nil {
		return nil, &failure{err: s.fromErr, setup: true}
	}
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return nil, &failure{err: fmt.Errorf("SMTP address %q: %w", s.cfg.Addr, err), setup: true}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return nil, &failure{err: fmt.Errorf("connect to SMTP server %s: %w", s.cfg.Addr, err), setup: true}
	}
	// net/smtp has no contexts: the deadline bounds every read and write,
	// and closing the connection ends whatever waits when ctx is done.
	_ = raw.SetDeadline(time.Now().Add(s.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { _ = raw.Close() })
	ss, err := s.handshake(ctx, raw, host)
	if !stop() || err != nil {
		_ = raw.Close()
		if err == nil {
			err = ctx.Err()
		}
		f, ok := err.(*failure)
		if !ok {
			f = &failure{err: fmt.Errorf("SMTP server %s: %w", s.cfg.Addr, err)}
		}
		f.setup = true
		return nil, f
	}
	return ss, nil
}

func (s *Service) handshake(ctx context.Context, raw net.Conn, host string) (*session, error) {
	tlsConfig := &tls.Config{ServerName: host, RootCAs: s.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	conn := raw
	if s.cfg.TLS == TLSImplicit {
		tc := tls.Client(raw, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS with %s: %w", s.cfg.Addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Hello(helloName()); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("EHLO: %w", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			_ = c.Close()
			return nil, &failure{err: fmt.Errorf("SMTP server %s does not offer STARTTLS: refusing to send in clear (use --smtp-tls=tls for implicit TLS, or none for a relay on loopback)", s.cfg.Addr)}
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.cfg.Username != "" {
		_, isTLS := c.TLSConnectionState()
		if !isTLS && !isLoopback(host) {
			_ = c.Close()
			return nil, &failure{err: fmt.Errorf("refusing to send the SMTP password in clear to %s", s.cfg.Addr)}
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			_ = c.Close()
			return nil, &failure{err: fmt.Errorf("SMTP server %s does not offer AUTH, but a user name is configured", s.cfg.Addr)}
		}
		if err := c.Auth(plainAuth{username: s.cfg.Username, password: s.cfg.Password}); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("AUTH PLAIN as %s: %w", s.cfg.Username, err)
		}
	}
	return &session{raw: raw, client: c}, nil
}

// plainAuth is AUTH PLAIN. net/smtp's own refuses loopback addresses other
// than the literal names it knows; dial has already decided where a
// password may go.
type plainAuth struct{ username, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.username + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected AUTH PLAIN challenge")
	}
	return nil, nil
}

// helloName is the name the client gives in EHLO.
func helloName() string {
	if h, err := os.Hostname(); err == nil && strings.Contains(h, ".") && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}

// send delivers one message. A failure says whether it is permanent (a
// 5xx reply to the recipient or the content) and broken says whether the
// session can carry another message.
func (ss *session) send(ctx context.Context, timeout time.Duration, from, to string, data []byte) (broken bool, fail *failure) {
	_ = ss.raw.SetDeadline(time.Now().Add(timeout))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = ss.raw.Close() })
	defer stop()
	ss.sent++
	refused := func(what string, err error) (bool, *failure) {
		f := &failure{err: fmt.Errorf("%s: %w", what, err)}
		var reply *textproto.Error
		if !errors.As(err, &reply) {
			// Network trouble: the connection is of no further use.
			return true, f
		}
		f.permanent = reply.Code >= 500
		// After a refusal the session is reset for the next message; a
		// server that is closing (421) or will not reset is left.
		return reply.Code == 421 || ss.client.Reset() != nil, f
	}
	if err := ss.client.Mail(from); err != nil {
		// A refused sender (AUTH required, a From the account may not
		// use) is the configuration's fault, not this message's: retried,
		// and no other message is tried meanwhile.
		broken, f := refused("MAIL FROM <"+from+">", err)
		f.permanent, f.setup = false, true
		return broken, f
	}
	if err := ss.client.Rcpt(to); err != nil {
		return refused("RCPT TO <"+to+">", err)
	}
	w, err := ss.client.Data()
	if err != nil {
		return refused("DATA", err)
	}
	if _, err := w.Write(data); err != nil {
		return true, &failure{err: fmt.Errorf("DATA: %w", err)}
	}
	if err := w.Close(); err != nil {
		return refused("end of DATA", err)
	}
	return ss.sent >= maxPerSession, nil
}

// close says goodbye, briefly.
func (ss *session) close() {
	_ = ss.raw.SetDeadline(time.Now().Add(2 * time.Second))
	_ = ss.client.Quit()
	_ = ss.raw.Close()
}
