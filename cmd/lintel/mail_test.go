package main

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// mailbox is a real SMTP server on loopback that keeps what it receives.
type mailbox struct {
	Addr string
	mu   sync.Mutex
	got  []receivedMail
	new  chan struct{}
}

// receivedMail is one delivered message, its text part decoded.
type receivedMail struct {
	From, To, Subject string
	Text, HTML        string
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{new: make(chan struct{}, 100)}
	srv := smtp.NewServer(mb)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	mb.Addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return mb
}

// NewSession implements smtp.Backend.
func (mb *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }

type mailSession struct {
	mb       *mailbox
	from, to string
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error   { s.to = to; return nil }
func (s *mailSession) Reset()                                      {}
func (s *mailSession) Logout() error                               { return nil }

func (s *mailSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	m := receivedMail{From: s.from, To: s.to, Subject: subject}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		body, err := io.ReadAll(part)
		if err != nil {
			return err
		}
		if strings.EqualFold(part.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			if body, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body))); err != nil {
				return err
			}
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			m.Text = string(body)
		case "text/html":
			m.HTML = string(body)
		}
	}
	s.mb.mu.Lock()
	s.mb.got = append(s.mb.got, m)
	s.mb.mu.Unlock()
	s.mb.new <- struct{}{}
	return nil
}

// waitFor returns the first message to rcpt delivered after the first skip
// ones to that address, waiting up to 20 s.
func (mb *mailbox) waitFor(t *testing.T, rcpt string, skip int) receivedMail {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		mb.mu.Lock()
		n := 0
		for _, m := range mb.got {
			if strings.EqualFold(m.To, rcpt) {
				if n == skip {
					mb.mu.Unlock()
					return m
				}
				n++
			}
		}
		mb.mu.Unlock()
		select {
		case <-mb.new:
		case <-deadline:
			t.Fatalf("no e-mail #%d to %s arrived within 20 s", skip+1, rcpt)
		}
	}
}

// count is how many messages rcpt got.
func (mb *mailbox) count(rcpt string) int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := 0
	for _, m := range mb.got {
		if strings.EqualFold(m.To, rcpt) {
			n++
		}
	}
	return n
}

var inviteLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/wallet/invite/[A-Za-z0-9_-]{43}`)

// inviteLink is the invitation link in a message's text and HTML parts
// (they must agree).
func inviteLink(t *testing.T, m receivedMail) string {
	t.Helper()
	link := inviteLinkRE.FindString(m.Text)
	require.NotEmpty(t, link, "no invitation link in the text part:\n%s", m.Text)
	require.Contains(t, m.HTML, link, "the HTML part links elsewhere")
	return link
}
