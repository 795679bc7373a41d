package templates

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/lintel/lintel/internal/apperr"
)

// DefaultMaxLength bounds a field with no explicit maximum.
const DefaultMaxLength = 1000

var (
	e164   = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	number = regexp.MustCompile(`^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$`)
	// "(0)" is the national trunk prefix written inside international
	// numbers ("+41 (0)44 …"); it is not dialled and not part of E.164.
	phoneJunk = strings.NewReplacer("(0)", "", " ", "", "-", "", "(", "", ")", "", ".", "", "/", "")
)

// CheckValue validates one value for field f and returns its canonical
// form (trimmed; e-mail lower-cased; phone without spacing; country as its
// ISO 3166-1 alpha-2 code; date as YYYY-MM-DD). An empty value is valid
// unless the field is required.
func CheckValue(f Field, raw string) (string, string) {
	v := strings.TrimSpace(raw)
	if v == "" {
		if f.Required {
			return "", "is required"
		}
		return "", ""
	}
	if !utf8.ValidString(v) {
		return "", "is not valid UTF-8"
	}
	if strings.ContainsRune(v, 0) {
		return "", "contains a NUL character"
	}
	limit := f.MaxLength
	if limit <= 0 {
		limit = DefaultMaxLength
	}
	if n := utf8.RuneCountInString(v); n > limit {
		return "", fmt.Sprintf("is %d characters long, at most %d allowed", n, limit)
	}
	switch f.Type {
	case TypeText:
		return v, ""
	case TypeNumber:
		if !number.MatchString(v) {
			return "", fmt.Sprintf("%q is not a number", v)
		}
		return v, ""
	case TypeDate:
		return checkDate(v)
	case TypeEmail:
		if !IsEmail(v) {
			return "", fmt.Sprintf("%q is not a valid e-mail address", v)
		}
		return strings.ToLower(v), ""
	case TypePhone:
		p := phoneJunk.Replace(v)
		if strings.HasPrefix(p, "00") {
			p = "+" + p[2:]
		}
		if !e164.MatchString(p) {
			return "", fmt.Sprintf("%q is not an E.164 phone number (e.g. +41446681800)", v)
		}
		return p, ""
	case TypeCountry:
		return checkCountry(v)
	case TypeSelect:
		for _, o := range f.Options {
			if strings.EqualFold(o, v) {
				return o, ""
			}
		}
		return "", fmt.Sprintf("%q is not one of the options %s", v, strings.Join(f.Options, ", "))
	}
	return "", fmt.Sprintf("has unknown type %s", f.Type)
}

// IsEmail reports whether s is a bare e-mail address (no display name)
// whose domain has a dot.
func IsEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".")
}

var dateLayouts = []string{"2006-01-02", "2006/01/02", "02.01.2006"}

func checkDate(v string) (string, string) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.Format("2006-01-02"), ""
		}
	}
	return "", fmt.Sprintf("%q is not a date (use YYYY-MM-DD)", v)
}

// reservedRegions are codes x/text knows as countries that ISO 3166-1 only
// reserves (exceptionally or for users) rather than assigns.
var reservedRegions = map[string]bool{
	"AC": true, "CP": true, "DG": true, "EA": true, "EU": true, "EZ": true, "FX": true, "IC": true,
	"SU": true, "TA": true, "UK": true, "UN": true, "XK": true, "QO": true,
}

func checkCountry(v string) (string, string) {
	up := strings.ToUpper(v)
	letters := strings.Trim(up, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
	if letters && (len(up) == 2 || len(up) == 3) {
		// Only assigned codes, written exactly: x/text also accepts
		// reserved aliases (UK, UN) and numeric codes, which ISO 3166-1
		// alpha codes are not.
		if r, err := language.ParseRegion(up); err == nil && r.IsCountry() && r.ISO3() != "" && r.ISO3() != "ZZZ" && !reservedRegions[r.String()] &&
			((len(up) == 2 && r.String() == up) || (len(up) == 3 && r.ISO3() == up)) {
			return r.String(), ""
		}
	}
	return "", fmt.Sprintf("%q is not an ISO 3166-1 country code", v)
}

// CheckValues validates a whole set of field values against the template
// and returns the canonical values (empty ones dropped). Every problem is
// added to fs with path prefix+"."+key.
func (t *Template) CheckValues(values map[string]string, prefix string, fs *apperr.Fields) map[string]string {
	out := make(map[string]string, len(values))
	for key := range values {
		if _, ok := t.Field(key); !ok {
			fs.Add(prefix+"."+key, "is not a field of template %q", t.Name)
		}
	}
	for _, f := range t.Fields {
		v, reason := CheckValue(f, values[f.Key])
		if reason != "" {
			fs.Add(prefix+"."+f.Key, "%s", reason)
			continue
		}
		if v != "" {
			out[f.Key] = v
		}
	}
	return out
}
