package csvin

import (
	"sort"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Target is something a column can be mapped to: a built-in attribute or a
// template field.
type Target struct {
	Key      string   // what a Proposal names, e.g. "recipient_email"
	Label    string   // shown to people, e.g. "E-mail"
	Synonyms []string // other header names that mean this target
}

// Proposal is the proposed mapping of one column.
type Proposal struct {
	Column     int     // 0-based index into the header
	Header     string  // the header cell as given
	Key        string  // the target's Key, "" for none
	Confidence float64 // 0 (none) to 1 (the header is the key or label)
}

// CommonSynonyms holds header names that mean Lintel's built-in
// attributes, by attribute key. ProposeMapping consults it for every target
// whose Key is listed here, in addition to the target's own Synonyms.
var CommonSynonyms = map[string][]string{
	"card_id":           {"card id", "card number", "card no", "badge", "badge number", "id card"},
	"unique_identifier": {"unique id", "identifier", "id number", "student id", "employee id", "vendor_data"},
	"recipient_email":   {"email", "e-mail", "e-mail address", "email address", "mail"},
	"first_name":        {"first name", "given name", "forename", "vorname", "prénom"},
	"last_name":         {"last name", "surname", "family name", "nachname", "nom"},
	"phone":             {"phone", "mobile", "telephone", "phone number"},
	"country":           {"country", "country code", "land", "pays"},
	"valid_from":        {"valid from", "start date", "start"},
	"expires_at":        {"expires", "expiry", "expiration date", "valid until", "end date"},
	"barcode_value":     {"barcode", "barcode value"},
}

// CommonTargets returns the built-in attributes as targets (their
// synonyms come from CommonSynonyms).
func CommonTargets() []Target {
	return []Target{
		{Key: "card_id", Label: "Card ID"},
		{Key: "unique_identifier", Label: "Unique identifier"},
		{Key: "recipient_email", Label: "E-mail"},
		{Key: "first_name", Label: "First name"},
		{Key: "last_name", Label: "Last name"},
		{Key: "phone", Label: "Phone"},
		{Key: "country", Label: "Country"},
		{Key: "valid_from", Label: "Valid from"},
		{Key: "expires_at", Label: "Expires at"},
		{Key: "barcode_value", Label: "Barcode value"},
	}
}

// Confidence of each kind of match.
const (
	confName          = 1.0  // normalised header = normalised key or label
	confNameCompact   = 0.95 // the same without separators ("FirstName")
	confSynonym       = 0.9
	confSynonymCompat = 0.85
	confTokenSet      = 0.8 // the same words in another order
	minConfidence     = 0.55
)

// ProposeMapping proposes a target for each header column. Header cells
// and target keys, labels and synonyms are normalised (lower case, accents
// removed, spaces, '-', '_', '.' and '/' as one separator, other
// punctuation dropped) and then compared: equal to a key or label first
// (confidence 1, or 0.95 ignoring separators), then equal to a synonym
// (0.9 / 0.85), then by their sets of words (at most 0.8: the same words in
// another order, or all words of a name among more words of the header).
// Below 0.55 a column gets no target. No two columns get the same key: the
// one with the higher confidence, or else the first, keeps it and the
// other gets none. Among targets matching a column equally well, the first
// in targets wins.
func ProposeMapping(header []string, targets []Target) []Proposal {
	type name struct {
		norm, compact string
		tokens        []string
		synonym       bool
	}
	tnames := make([][]name, len(targets))
	for i, t := range targets {
		add := func(s string, synonym bool) {
			n, c, toks := normaliseName(s)
			if n != "" {
				tnames[i] = append(tnames[i], name{n, c, toks, synonym})
			}
		}
		add(t.Key, false)
		add(t.Label, false)
		for _, s := range t.Synonyms {
			add(s, true)
		}
		for _, s := range CommonSynonyms[t.Key] {
			add(s, true)
		}
	}

	props := make([]Proposal, len(header))
	for col, h := range header {
		props[col] = Proposal{Column: col, Header: h}
		hn, hc, htoks := normaliseName(h)
		if hn == "" {
			continue
		}
		for ti, names := range tnames {
			best := 0.0
			for _, n := range names {
				var c float64
				switch {
				case hn == n.norm && !n.synonym:
					c = confName
				case hc == n.compact && !n.synonym:
					c = confNameCompact
				case hn == n.norm:
					c = confSynonym
				case hc == n.compact:
					c = confSynonymCompat
				default:
					c = tokenScore(htoks, n.tokens)
				}
				best = max(best, c)
			}
			if best >= minConfidence && best > props[col].Confidence {
				props[col].Key = targets[ti].Key
				props[col].Confidence = best
			}
		}
	}

	// One column per key: the most confident, then the first, keeps it.
	order := make([]int, len(props))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return props[order[a]].Confidence > props[order[b]].Confidence })
	taken := make(map[string]bool)
	for _, i := range order {
		p := &props[i]
		if p.Key == "" {
			continue
		}
		if taken[p.Key] {
			p.Key, p.Confidence = "", 0
			continue
		}
		taken[p.Key] = true
	}
	return props
}

// tokenScore compares two sets of words: 0.8 when equal, 0.5-0.75 when all
// of name's words are among more words of the header (more for a larger
// share), else 0.6 × their Jaccard index.
func tokenScore(header, name []string) float64 {
	if len(header) == 0 || len(name) == 0 {
		return 0
	}
	common := 0
	for _, n := range name {
		if contains(header, n) {
			common++
		}
	}
	if common == 0 {
		return 0
	}
	hs := 0 // distinct header words
	for i, h := range header {
		if !contains(header[:i], h) {
			hs++
		}
	}
	switch {
	case common == len(name) && common == hs:
		return confTokenSet
	case common == len(name):
		return 0.5 + 0.25*float64(common)/float64(hs)
	}
	return 0.6 * float64(common) / float64(hs+len(name)-common)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// normaliseName returns s in lower case without accents, its words
// separated by single spaces, the same without separators, and its
// distinct words.
func normaliseName(s string) (normalised, compact string, tokens []string) {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	plain, _, err := transform.String(t, s)
	if err != nil {
		plain = s
	}
	var b strings.Builder
	sep := false
	for _, r := range strings.ToLower(plain) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if sep && b.Len() > 0 {
				b.WriteByte(' ')
			}
			sep = false
			if r == 'ß' {
				b.WriteString("ss")
			} else {
				b.WriteRune(r)
			}
		case unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' || r == '/' || r == '\\':
			sep = true
		default: // other punctuation, symbols, controls: dropped
		}
	}
	normalised = b.String()
	tokens = strings.Fields(normalised)
	compact = strings.Join(tokens, "")
	distinct := tokens[:0]
	for _, tok := range tokens {
		if !contains(distinct, tok) {
			distinct = append(distinct, tok)
		}
	}
	return normalised, compact, distinct
}
