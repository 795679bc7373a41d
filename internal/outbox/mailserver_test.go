package outbox

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// mailServer is a real SMTP server on loopback that records what it
// receives. By default it offers STARTTLS with a self-signed certificate
// (written to CAFile), and accepts mail only over TLS after AUTH PLAIN as
// mailUser / mailPassword.
type mailServer struct {
	Addr   string
	CAFile string

	mu       sync.Mutex
	messages []received
	rcpts    map[string]int // RCPT commands per recipient
	mails    int            // MAIL commands, accepted or not
	refuse   map[string]*smtp.SMTPError
	wire     bytes.Buffer // every byte clients sent, as it crossed the wire
}

// received is one accepted message.
type received struct {
	From string
	To   []string
	Data []byte
}

const (
	mailUser     = "lintel"
	mailPassword = "s3cret"
)

type mailServerOptions struct {
	// noTLS offers no STARTTLS (and so no AUTH).
	noTLS bool
	// implicitTLS speaks TLS from the first byte.
	implicitTLS bool
}

func startMailServer(t *testing.T, o mailServerOptions) *mailServer {
	t.Helper()
	cert, certPEM := selfSignedCert(t)
	ms := &mailServer{rcpts: map[string]int{}, refuse: map[string]*smtp.SMTPError{}}
	ms.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ms.CAFile, certPEM, 0o600))

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{ms: ms, conn: c}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = quietSMTPLog{}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}}
	if !o.noTLS && !o.implicitTLS {
		srv.TLSConfig = tlsConfig
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var l net.Listener = &tapListener{Listener: ln, ms: ms}
	if o.implicitTLS {
		// The tap sits under TLS: it records ciphertext.
		l = tls.NewListener(l, tlsConfig)
	}
	ms.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ms
}

// refuseRecipient makes the server answer RCPT for rcpt with code (nil
// accepts it again).
func (ms *mailServer) refuseRecipient(rcpt string, e *smtp.SMTPError) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if e == nil {
		delete(ms.refuse, rcpt)
		return
	}
	ms.refuse[rcpt] = e
}

func (ms *mailServer) received() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.messages...)
}

func (ms *mailServer) rcptCount(rcpt string) int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.rcpts[rcpt]
}

func (ms *mailServer) mailCommands() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.mails
}

func (ms *mailServer) wireBytes() string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.wire.String()
}

type mailSession struct {
	ms     *mailServer
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != mailUser || password != mailPassword {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	s.ms.mu.Lock()
	s.ms.mails++
	s.ms.mu.Unlock()
	if _, isTLS := s.conn.TLSConnectionState(); !isTLS {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	s.ms.rcpts[to]++
	if e := s.ms.refuse[to]; e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	s.ms.messages = append(s.ms.messages, received{From: s.from, To: s.to, Data: data})
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// tapListener records what clients send.
type tapListener struct {
	net.Listener
	ms *mailServer
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, ms: l.ms}, nil
}

type tapConn struct {
	net.Conn
	ms *mailServer
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.ms.mu.Lock()
	c.ms.wire.Write(p[:n])
	c.ms.mu.Unlock()
	return n, err
}

type quietSMTPLog struct{}

func (quietSMTPLog) Printf(string, ...any) {}
func (quietSMTPLog) Println(...any)        {}

// selfSignedCert makes a certificate for 127.0.0.1 that is its own CA.
func selfSignedCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "Lintel test mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	require.NoError(t, err)
	return cert, certPEM
}

// syncBuffer is a log destination several goroutines may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var errNotFound = errors.New("not found")

// messageTo returns the one message the server accepted for rcpt.
func (ms *mailServer) messageTo(rcpt string) (received, error) {
	var found []received
	for _, m := range ms.received() {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				found = append(found, m)
			}
		}
	}
	if len(found) != 1 {
		return received{}, errNotFound
	}
	return found[0], nil
}

var (
	smtpError451 = smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "mailbox busy, try again later"}
	smtpError550 = smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
)
