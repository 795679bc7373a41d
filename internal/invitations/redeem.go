package invitations

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/gateways"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/revocation"
	"github.com/lintel/lintel/internal/templates"
)

// CardField is one labelled value on the front of a card.
type CardField struct {
	Label, Value string
}

// Preview is what the wallet page shows before the identity check.
type Preview struct {
	Organisation          string
	TemplateName          string
	ExpiresAt             time.Time
	AttemptsLeft          int
	UniqueIdentifierLabel string
	SecurityQuestions     []string
	FrontFields           []CardField
	// PhotoPath is the same-origin path of the photo, "" when none.
	PhotoPath string
}

// Card is what the phone keeps to show the card.
type Card struct {
	Organisation, TemplateName string
	CardID, BarcodeValue       string
	Symbology                  templates.Symbology
	// BarcodeImage and Photo are data: URLs (Photo "" when none).
	BarcodeImage, Photo string
	FrontFields         []CardField
}

// Issued is a newly issued credential.
type Issued struct {
	Credential        string
	ExpiresAt         time.Time
	CodeWindowSeconds int
	Card              Card
}

// opened is an invitation with its record, template and organisation.
type opened struct {
	ID              uuid.UUID       `bun:"id"`
	OrgID           uuid.UUID       `bun:"org_id"`
	RecordID        uuid.UUID       `bun:"record_id"`
	ExpiresAt       time.Time       `bun:"expires_at"`
	FailedAttempts  int             `bun:"failed_attempts"`
	LockedAt        *time.Time      `bun:"locked_at"`
	RedeemedAt      *time.Time      `bun:"redeemed_at"`
	SupersededAt    *time.Time      `bun:"superseded_at"`
	Organisation    string          `bun:"organisation"`
	TemplateID      uuid.UUID       `bun:"template_id"`
	TemplateName    string          `bun:"template_name"`
	TemplateFields  json.RawMessage `bun:"template_fields"`
	Symbology       string          `bun:"symbology"`
	IdentifierKind  string          `bun:"unique_identifier_kind"`
	Status          string          `bun:"status"`
	CardID          string          `bun:"card_id"`
	UniqueKey       string          `bun:"unique_key"`
	BarcodeValue    string          `bun:"barcode_value"`
	Questions       json.RawMessage `bun:"security_questions"`
	Fields          json.RawMessage `bun:"fields"`
	ValidFrom       *time.Time      `bun:"valid_from"`
	RecordExpiresAt *time.Time      `bun:"record_expires_at"`
	HasPhoto        bool            `bun:"has_photo"`
}

// errLinkInvalid is the one answer for every unusable link, so a guesser
// learns nothing about which tokens once existed.
var errLinkInvalid = apperr.NotFoundf("this invitation link is not valid any more; ask your card administrator for a new one")

// open finds the invitation of a token; every unusable link is
// errLinkInvalid and counts against the client's address.
func (s *Service) open(ctx context.Context, db bun.IDB, token string, lock bool) (*opened, error) {
	addr := caller.ClientAddr(ctx)
	if wait := s.byAddr.BlockedFor(addr); wait > 0 {
		return nil, &apperr.Error{Code: apperr.RateLimited, Message: fmt.Sprintf("too many failed attempts from this address; try again in %s", wait.Round(time.Second)),
			Extra: map[string]any{"retryAfterSeconds": int(wait.Seconds()) + 1}}
	}
	if len(token) != 43 {
		s.byAddr.Fail(addr)
		return nil, errLinkInvalid
	}
	q := `SELECT i.id, i.org_id, i.record_id, i.expires_at, i.failed_attempts, i.locked_at, i.redeemed_at, i.superseded_at,
			o.name AS organisation, t.id AS template_id, t.name AS template_name, t.fields AS template_fields, t.symbology,
			t.unique_identifier_kind, r.status, r.card_id, r.unique_key, r.barcode_value, r.security_questions, r.fields,
			r.valid_from, r.expires_at AS record_expires_at, r.has_photo
		FROM invitations i JOIN card_records r ON r.id = i.record_id JOIN card_templates t ON t.id = r.template_id
		JOIN organisations o ON o.id = i.org_id WHERE i.token_hash = ?`
	if lock {
		q += ` FOR UPDATE OF i, r`
	}
	var o opened
	err := db.NewRaw(q, auth.HashToken(token)).Scan(ctx, &o)
	if errors.Is(err, sql.ErrNoRows) {
		s.byAddr.Fail(addr)
		return nil, errLinkInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("invitations: find invitation: %w", err)
	}
	now := time.Now()
	if o.RedeemedAt != nil || o.SupersededAt != nil || !o.ExpiresAt.After(now) || o.Status != string(records.Active) ||
		(o.RecordExpiresAt != nil && !o.RecordExpiresAt.After(now)) {
		s.byAddr.Fail(addr)
		return nil, errLinkInvalid
	}
	if o.LockedAt != nil {
		return nil, apperr.New(apperr.FailedPrecondition, "this invitation is locked after %d wrong answers; ask your card administrator for a new one", s.cfg.MaxAttempts)
	}
	return &o, nil
}

func (o *opened) frontFields() ([]CardField, error) {
	var fields []templates.Field
	if err := json.Unmarshal(o.TemplateFields, &fields); err != nil {
		return nil, fmt.Errorf("invitations: decode template fields: %w", err)
	}
	var values map[string]string
	if err := json.Unmarshal(o.Fields, &values); err != nil {
		return nil, fmt.Errorf("invitations: decode record fields: %w", err)
	}
	out := []CardField{}
	for _, f := range fields {
		if f.Side == templates.Front && values[f.Key] != "" {
			out = append(out, CardField{Label: f.Label, Value: values[f.Key]})
		}
	}
	return out, nil
}

// Lookup returns the card preview and questions of an invitation link
// (public; the token is the credential).
func (s *Service) Lookup(ctx context.Context, token string) (*Preview, error) {
	o, err := s.open(ctx, s.db.Bun, token, false)
	if err != nil {
		return nil, err
	}
	front, err := o.frontFields()
	if err != nil {
		return nil, err
	}
	qs, err := records.Questions(o.Questions)
	if err != nil {
		return nil, err
	}
	photoPath := ""
	if o.HasPhoto {
		photoPath = "/wallet/invite/" + token + "/photo"
	}
	label := "E-mail address"
	if o.IdentifierKind == string(templates.IdentifierIDNumber) {
		label = "ID number"
	}
	return &Preview{Organisation: o.Organisation, TemplateName: o.TemplateName, ExpiresAt: o.ExpiresAt,
		AttemptsLeft: s.cfg.MaxAttempts - o.FailedAttempts, UniqueIdentifierLabel: label, SecurityQuestions: qs,
		FrontFields: front, PhotoPath: photoPath}, nil
}

// Photo returns the cardholder's photo for the wallet page (public,
// token-gated).
func (s *Service) Photo(ctx context.Context, token string) (string, []byte, error) {
	o, err := s.open(ctx, s.db.Bun, token, false)
	if err != nil {
		return "", nil, err
	}
	return s.photo(ctx, s.db.Bun, o.RecordID)
}

func (s *Service) photo(ctx context.Context, db bun.IDB, record uuid.UUID) (string, []byte, error) {
	var ph struct {
		ContentType string `bun:"content_type"`
		Data        []byte `bun:"data"`
	}
	err := db.NewRaw(`SELECT content_type, data FROM record_photos WHERE record_id = ?`, record).Scan(ctx, &ph)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, apperr.NotFoundf("no photo")
	}
	if err != nil {
		return "", nil, fmt.Errorf("invitations: load photo: %w", err)
	}
	return ph.ContentType, ph.Data, nil
}

// Redeem checks the cardholder's identity and, when it matches, binds the
// device key and issues the credential (public, token-gated). Wrong answers
// count: after MaxAttempts the invitation locks.
func (s *Service) Redeem(ctx context.Context, token, uniqueIdentifier string, answers []string, deviceKey string) (*Issued, error) {
	device, err := credentials.ParseDeviceKey(deviceKey)
	if err != nil {
		return nil, apperr.Validation(apperr.FieldError{Path: "devicePublicKey", Reason: err.Error()})
	}
	if len(answers) > records.MaxSecurityQuestions || len(uniqueIdentifier) > 1000 {
		return nil, apperr.Validation(apperr.FieldError{Path: "answers", Reason: "too many or too long answers"})
	}
	for _, a := range answers {
		if len(a) > 1000 {
			return nil, apperr.Validation(apperr.FieldError{Path: "answers", Reason: "too many or too long answers"})
		}
	}
	var issued *Issued
	var wrong *apperr.Error
	err = s.db.Bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// A credential still live for the record (there is normally none:
		// resets and removals revoke it) must be revoked in the feed, whose
		// lock comes before any row lock (see revocation.LockFeed).
		pre, err := s.open(ctx, tx, token, false)
		if err != nil {
			return err
		}
		var live bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM credentials WHERE record_id = ? AND revoked_at IS NULL)`, pre.RecordID).Scan(ctx, &live); err != nil {
			return fmt.Errorf("invitations: look for a live credential: %w", err)
		}
		if live {
			if err := revocation.LockFeed(ctx, revocation.Bun(tx), pre.OrgID); err != nil {
				return err
			}
		}
		o, err := s.open(ctx, tx, token, true)
		if err != nil {
			return err
		}
		match := records.IdentifierKey(uniqueIdentifier) == o.UniqueKey
		answersOK, err := records.AnswersMatch(ctx, o.Questions, answers)
		if err != nil {
			return err
		}
		if !match || !answersOK {
			wrong, err = s.countFailure(ctx, tx, o)
			return err // commits the count; the caller gets wrong
		}
		issued, err = s.issue(ctx, tx, o, device, live)
		return err
	})
	if err != nil {
		return nil, err
	}
	if wrong != nil {
		s.byAddr.Fail(caller.ClientAddr(ctx))
		return nil, wrong
	}
	return issued, nil
}

// countFailure records a wrong identity check and locks the invitation at
// MaxAttempts.
func (s *Service) countFailure(ctx context.Context, tx bun.Tx, o *opened) (*apperr.Error, error) {
	failed := o.FailedAttempts + 1
	locked := failed >= s.cfg.MaxAttempts
	if _, err := tx.NewRaw(`UPDATE invitations SET failed_attempts = ?, locked_at = CASE WHEN ? THEN now() END WHERE id = ?`,
		failed, locked, o.ID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("invitations: count failure: %w", err)
	}
	action := "invitation.failed_attempt"
	if locked {
		action = "invitation.locked"
	}
	if err := audit.Write(ctx, tx, audit.Event{OrgID: o.OrgID, Action: action, TargetKind: "record", TargetID: o.RecordID.String(),
		Details: map[string]any{"failedAttempts": failed, "clientAddress": caller.ClientAddr(ctx)}}); err != nil {
		return nil, err
	}
	if locked {
		return apperr.New(apperr.FailedPrecondition, "this invitation is locked after %d wrong answers; ask your card administrator for a new one", s.cfg.MaxAttempts), nil
	}
	left := s.cfg.MaxAttempts - failed
	return &apperr.Error{Code: apperr.ValidationFailed, Message: fmt.Sprintf("the identifier or answers do not match; %d attempts left", left),
		Fields: []apperr.FieldError{{Path: "answers", Reason: "the identifier or answers do not match"}},
		Extra:  map[string]any{"attemptsLeft": left}}, nil
}

// issue signs the credential for a redeemed invitation.
func (s *Service) issue(ctx context.Context, tx bun.Tx, o *opened, device credentials.DeviceKey, live bool) (*Issued, error) {
	key, err := s.keys.Signing(ctx, o.OrgID)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	nbf := now
	if o.ValidFrom != nil && o.ValidFrom.After(nbf) {
		nbf = o.ValidFrom.UTC().Truncate(time.Second)
	}
	exp := now.Add(s.cfg.CredentialTTL)
	if o.RecordExpiresAt != nil && o.RecordExpiresAt.Before(exp) {
		exp = o.RecordExpiresAt.UTC().Truncate(time.Second)
	}
	claims := credentials.Claims{ID: uuid.New(), Issuer: s.Issuer(), Audience: Audience, OrgID: o.OrgID, RecordID: o.RecordID,
		TemplateID: o.TemplateID, CardID: o.CardID, IssuedAt: now, NotBefore: nbf, ExpiresAt: exp, Device: device}
	jwt, err := credentials.Issue(key, claims)
	if err != nil {
		return nil, err
	}
	if _, err := tx.NewRaw(`UPDATE invitations SET redeemed_at = now() WHERE id = ?`, o.ID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("invitations: redeem: %w", err)
	}
	// One live credential per record: a leftover one stops working now.
	if live {
		if _, err := revocation.Record(ctx, revocation.Bun(tx), o.OrgID, o.RecordID, revocation.Reissued, string(records.CredentialRevoked)); err != nil {
			return nil, err
		}
	}
	deviceJSON, err := json.Marshal(device)
	if err != nil {
		return nil, fmt.Errorf("invitations: encode device key: %w", err)
	}
	if _, err := tx.NewRaw(`INSERT INTO credentials (id, org_id, record_id, template_id, invitation_id, kid, card_id, device_key, issued_at, not_before, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, claims.ID, o.OrgID, o.RecordID, o.TemplateID, o.ID, key.Kid, o.CardID, string(deviceJSON),
		now, nbf, exp).Exec(ctx); err != nil {
		return nil, fmt.Errorf("invitations: store credential: %w", err)
	}
	if _, err := tx.NewRaw(`UPDATE card_records SET credential_state = 'ACTIVE', version = version + 1, updated_at = now() WHERE id = ?`,
		o.RecordID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("invitations: set credential state: %w", err)
	}
	if err := audit.Write(ctx, tx, audit.Event{OrgID: o.OrgID, Action: "credential.issue", TargetKind: "record", TargetID: o.RecordID.String(),
		Details: map[string]any{"credentialId": claims.ID, "kid": key.Kid, "expiresAt": exp, "clientAddress": caller.ClientAddr(ctx)}}); err != nil {
		return nil, err
	}
	if err := events.Notify(ctx, tx, events.Event{Org: o.OrgID, Topic: records.TopicFor(o.TemplateID), Kind: records.ChangeUpdated, ID: o.RecordID.String()}); err != nil {
		return nil, err
	}
	// Gateways pull at once, so a key just created for this credential is
	// at the door before the phone is.
	if err := events.Notify(ctx, tx, events.Event{Org: o.OrgID, Topic: gateways.TopicAccessList(o.OrgID), Kind: "KEYS"}); err != nil {
		return nil, err
	}
	card, err := s.card(ctx, tx, o)
	if err != nil {
		return nil, err
	}
	return &Issued{Credential: jwt, ExpiresAt: exp, CodeWindowSeconds: int(s.cfg.CodeWindow.Seconds()), Card: *card}, nil
}

// card assembles what the phone shows.
func (s *Service) card(ctx context.Context, db bun.IDB, o *opened) (*Card, error) {
	front, err := o.frontFields()
	if err != nil {
		return nil, err
	}
	c := &Card{Organisation: o.Organisation, TemplateName: o.TemplateName, CardID: o.CardID, BarcodeValue: o.BarcodeValue,
		Symbology: templates.Symbology(o.Symbology), FrontFields: front}
	// A value the symbology cannot show (saved before the template's
	// symbology changed) leaves the static barcode out; the rotating code
	// still works.
	if png, err := barcodes.Render(o.Symbology, o.BarcodeValue, 600); err == nil {
		c.BarcodeImage = dataURL("image/png", png)
	} else {
		s.log.WarnContext(ctx, "barcode not rendered for the wallet", "record", o.RecordID, "err", err)
	}
	if o.HasPhoto {
		ct, data, err := s.photo(ctx, db, o.RecordID)
		if err != nil && apperr.CodeOf(err) != apperr.NotFound {
			return nil, err
		}
		if err == nil {
			c.Photo = dataURL(ct, data)
		}
	}
	return c, nil
}

func dataURL(contentType string, data []byte) string {
	return "data:" + contentType + ";base64," + base64.StdEncoding.EncodeToString(data)
}
