package records

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/templates"
)

// Limits on record attributes.
const (
	MaxSecurityQuestions = 5
	maxQuestionLength    = 500
	maxIdentifierLength  = 254
	maxBarcodeLength     = 2000
)

// state is a record's checked, canonical attributes before storage.
type state struct {
	CardID           string
	UniqueIdentifier string
	Fields           map[string]string
	BarcodeValue     string
	RecipientEmail   string
	ValidFrom        *time.Time
	ExpiresAt        *time.Time
}

// IdentifierKey is the form unique identifiers are compared in: Unicode
// NFC, then lower-cased (so "ÄDA@x.ch" and "äda@x.ch" clash).
func IdentifierKey(s string) string {
	return strings.ToLower(norm.NFC.String(strings.TrimSpace(s)))
}

// NormaliseAnswer puts a security answer in the form that is hashed and
// compared: Unicode NFKC, case folded, runs of white space collapsed to one
// space, trimmed — so "  Zürich " and "ZÜRICH" match.
func NormaliseAnswer(a string) string {
	a = strings.ToLower(norm.NFKC.String(a))
	return strings.Join(strings.FieldsFunc(a, unicode.IsSpace), " ")
}

// check validates st against template t, canonicalising it in place.
func check(t *templates.Template, st *state, fs *apperr.Fields) {
	if strings.TrimSpace(st.CardID) == "" {
		fs.Add("input.cardId", "is required")
	} else if c, err := cardid.Parse(t.CardIDFormat, st.CardID); err != nil {
		fs.Add("input.cardId", "%s", reasonOf(err))
	} else {
		st.CardID = c
	}
	st.UniqueIdentifier = strings.TrimSpace(st.UniqueIdentifier)
	identifierErrors := len(*fs)
	switch {
	case st.UniqueIdentifier == "":
		fs.Add("input.uniqueIdentifier", "is required")
	case utf8.RuneCountInString(st.UniqueIdentifier) > maxIdentifierLength:
		fs.Add("input.uniqueIdentifier", "must be at most %d characters", maxIdentifierLength)
	case t.UniqueIdentifierKind == templates.IdentifierEmail && !templates.IsEmail(st.UniqueIdentifier):
		fs.Add("input.uniqueIdentifier", "%q is not a valid e-mail address (the template identifies cardholders by e-mail)", st.UniqueIdentifier)
	case strings.IndexFunc(st.UniqueIdentifier, unicode.IsControl) >= 0:
		fs.Add("input.uniqueIdentifier", "must not contain control characters")
	}
	if t.UniqueIdentifierKind == templates.IdentifierEmail {
		st.UniqueIdentifier = strings.ToLower(st.UniqueIdentifier)
	}
	st.Fields = t.CheckValues(st.Fields, "input.fields", fs)
	st.BarcodeValue = strings.TrimSpace(st.BarcodeValue)
	if st.BarcodeValue == "" {
		st.BarcodeValue = st.CardID
	}
	if utf8.RuneCountInString(st.BarcodeValue) > maxBarcodeLength {
		fs.Add("input.barcodeValue", "must be at most %d characters", maxBarcodeLength)
	} else if err := barcodes.Check(string(t.Symbology), st.BarcodeValue); err != nil && st.BarcodeValue != "" {
		// Refused now rather than rendered as a broken image later.
		fs.Add("input.barcodeValue", "%s", err.Error())
	}
	st.RecipientEmail = strings.ToLower(strings.TrimSpace(st.RecipientEmail))
	identifierOK := len(*fs) == identifierErrors
	if st.RecipientEmail == "" && t.UniqueIdentifierKind == templates.IdentifierEmail && identifierOK {
		st.RecipientEmail = st.UniqueIdentifier
	}
	if st.RecipientEmail != "" && !templates.IsEmail(st.RecipientEmail) {
		fs.Add("input.recipientEmail", "%q is not a valid e-mail address", st.RecipientEmail)
	}
	if st.ValidFrom != nil && st.ExpiresAt != nil && !st.ExpiresAt.After(*st.ValidFrom) {
		fs.Add("input.expiresAt", "must be after validFrom")
	}
}

func reasonOf(err error) string {
	if e, ok := err.(*cardid.Error); ok {
		return e.Reason
	}
	return err.Error()
}

type storedQuestion struct {
	Question   string `json:"q"`
	AnswerHash string `json:"h"`
}

// hashQuestions validates security questions and hashes their answers.
func hashQuestions(ctx context.Context, qs []SecurityQuestion, fs *apperr.Fields) ([]storedQuestion, error) {
	if len(qs) > MaxSecurityQuestions {
		fs.Add("input.securityQuestions", "at most %d security questions", MaxSecurityQuestions)
		return nil, nil
	}
	out := make([]storedQuestion, 0, len(qs))
	bad := false
	for i, q := range qs {
		path := fmt.Sprintf("input.securityQuestions[%d]", i)
		question := strings.TrimSpace(q.Question)
		answer := NormaliseAnswer(q.Answer)
		if question == "" {
			fs.Add(path+".question", "must not be empty")
			bad = true
		} else if utf8.RuneCountInString(question) > maxQuestionLength {
			fs.Add(path+".question", "must be at most %d characters", maxQuestionLength)
			bad = true
		}
		if answer == "" {
			fs.Add(path+".answer", "must not be empty")
			bad = true
		} else if utf8.RuneCountInString(answer) > maxQuestionLength {
			fs.Add(path+".answer", "must be at most %d characters", maxQuestionLength)
			bad = true
		}
		if bad {
			continue
		}
		out = append(out, storedQuestion{Question: question})
	}
	if bad || len(*fs) > 0 {
		// Hashing is expensive: only do it once the whole input is valid.
		return nil, nil
	}
	for i, q := range qs {
		h, err := auth.HashSecret(ctx, NormaliseAnswer(q.Answer))
		if err != nil {
			return nil, fmt.Errorf("records: hash security answer: %w", err)
		}
		out[i].AnswerHash = h
	}
	return out, nil
}

func searchText(st *state) string {
	var b strings.Builder
	for _, s := range []string{st.CardID, st.UniqueIdentifier, st.RecipientEmail} {
		b.WriteString(strings.ToLower(s))
		b.WriteByte(' ')
	}
	for _, k := range slices.Sorted(maps.Keys(st.Fields)) {
		b.WriteString(strings.ToLower(st.Fields[k]))
		b.WriteByte(' ')
	}
	return b.String()
}

// Questions returns the security questions stored with a record (raw is
// the security_questions column).
func Questions(raw []byte) ([]string, error) {
	var qs []storedQuestion
	if err := json.Unmarshal(raw, &qs); err != nil {
		return nil, fmt.Errorf("records: decode security questions: %w", err)
	}
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Question
	}
	return out, nil
}

// AnswersMatch reports whether answers, in question order, match the hashes
// stored with a record after NormaliseAnswer. Every answer is checked, so
// the time taken does not tell which one was wrong.
func AnswersMatch(ctx context.Context, raw []byte, answers []string) (bool, error) {
	var qs []storedQuestion
	if err := json.Unmarshal(raw, &qs); err != nil {
		return false, fmt.Errorf("records: decode security questions: %w", err)
	}
	ok := len(answers) == len(qs)
	for i, q := range qs {
		a := ""
		if i < len(answers) {
			a = answers[i]
		}
		match, err := auth.VerifySecret(ctx, q.AnswerHash, NormaliseAnswer(a))
		if err != nil {
			return false, err
		}
		ok = ok && match
	}
	return ok, nil
}
