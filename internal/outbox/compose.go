package outbox

import (
	"bytes"
	"fmt"
	"html"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/google/uuid"
)

// bodies puts the secret in place of the marker: as it is in the text
// body, HTML-escaped in the HTML body.
func bodies(text, htmlBody, secret string) (string, string) {
	if secret == "" {
		return text, htmlBody
	}
	return strings.ReplaceAll(text, LinkMarker, secret), strings.ReplaceAll(htmlBody, LinkMarker, html.EscapeString(secret))
}

// compose renders an RFC 5322 message: multipart/alternative with a plain
// text and an HTML part, both UTF-8 in quoted-printable, CRLF line ends.
func compose(id uuid.UUID, from *mail.Address, to, subject, text, htmlBody string, date time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ contentType, content string }{
		{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", htmlBody},
	} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.contentType},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	var msg bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&msg, "%s: %s\r\n", name, value) }
	header("From", from.String())
	header("To", (&mail.Address{Address: to}).String())
	msg.WriteString(fold("Subject", mime.QEncoding.Encode("utf-8", subject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", "<"+id.String()+"@"+domainOf(from.Address)+">")
	header("MIME-Version", "1.0")
	// The boundary is 60 hex digits, a token: folded onto a line of its own.
	header("Content-Type", "multipart/alternative;\r\n boundary="+mw.Boundary())
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// fold writes an unstructured header (its value already RFC 2047
// encoded when not plain ASCII), breaking lines between words so that none
// passes 78 characters where the words allow (the first word may go on a
// continuation line of its own).
func fold(name, value string) string {
	var b strings.Builder
	line := name + ":"
	for _, word := range strings.Fields(value) {
		if len(line)+1+len(word) > 78 {
			b.WriteString(line + "\r\n")
			line = ""
		}
		line += " " + word
	}
	b.WriteString(line + "\r\n")
	return b.String()
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i+1 < len(addr) {
		return addr[i+1:]
	}
	return "lintel.local"
}
