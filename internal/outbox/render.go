package outbox

import (
	"bytes"
	"embed"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

//go:embed templates
var templateFS embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.New("text").ParseFS(templateFS, "templates/*.txt"))
	htmlTemplates = htmltemplate.Must(htmltemplate.New("html").ParseFS(templateFS, "templates/*.html"))
)

// InvitationData fills an invitation e-mail.
type InvitationData struct {
	Organisation, TemplateName string
	// CardholderName may be empty.
	CardholderName string
	// ExpiresAt is when the link stops working.
	ExpiresAt time.Time
	// Replacement says the cardholder's card was reset (a lost phone) and
	// this link replaces it.
	Replacement bool
}

// RemovedData fills the notice that a card was withdrawn.
type RemovedData struct {
	Organisation, TemplateName string
	// CardholderName may be empty.
	CardholderName string
	// Deleted says the record was deleted (rather than archived).
	Deleted bool
}

// view is what the templates see: single-line, trimmed values.
type view struct {
	Organisation, TemplateName, CardholderName string
	ExpiresAt                                  string
	Subject                                    string
	Replacement, Deleted                       bool
}

// RenderInvitation renders an invitation: open the link (LinkMarker, the
// message's Secret) on your phone, it works for one phone, until ExpiresAt.
func RenderInvitation(d InvitationData) (subject, text, html string, err error) {
	return render("invitation", view{
		Organisation: orDefault(clean(d.Organisation), "Lintel"), TemplateName: orDefault(clean(d.TemplateName), "access"),
		CardholderName: clean(d.CardholderName), Replacement: d.Replacement,
		ExpiresAt: d.ExpiresAt.UTC().Format("Monday 2 January 2006, 15:04 MST"),
	})
}

// RenderRemoved renders the notice that a cardholder's card was withdrawn.
func RenderRemoved(d RemovedData) (subject, text, html string, err error) {
	return render("removed", view{
		Organisation: orDefault(clean(d.Organisation), "Lintel"), TemplateName: orDefault(clean(d.TemplateName), "access"),
		CardholderName: clean(d.CardholderName), Deleted: d.Deleted,
	})
}

func render(name string, v view) (subject, text, html string, err error) {
	var b bytes.Buffer
	if err := textTemplates.ExecuteTemplate(&b, name+".subject", v); err != nil {
		return "", "", "", err
	}
	v.Subject = clean(b.String())
	b.Reset()
	if err := textTemplates.ExecuteTemplate(&b, name+".text", v); err != nil {
		return "", "", "", err
	}
	text = b.String()
	b.Reset()
	if err := htmlTemplates.ExecuteTemplate(&b, name+".html", v); err != nil {
		return "", "", "", err
	}
	return v.Subject, text, b.String(), nil
}

// clean makes v one line (no control characters, single spaces), at most
// 200 characters, and takes out the link marker so data cannot move the
// link.
func clean(v string) string {
	v = strings.ReplaceAll(v, LinkMarker, "")
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(v); len(r) > 200 {
		v = string(r[:200]) + "…"
	}
	return v
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
