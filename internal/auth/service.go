package auth

import (
	"context"
	"fmt"
	"math"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/audit"
	"github.com/lintel/lintel/internal/caller"
)

// Operator is a person who administers an organisation.
type Operator struct {
	ID        uuid.UUID   `bun:"id"`
	OrgID     uuid.UUID   `bun:"org_id"`
	OrgName   string      `bun:"org_name"`
	Email     string      `bun:"email"`
	Name      string      `bun:"name"`
	Role      caller.Role `bun:"role"`
	CreatedAt time.Time   `bun:"created_at"`
}

// Session is what a successful login or refresh hands out.
type Session struct {
	AccessToken           string
	AccessTokenExpiresAt  time.Time
	RefreshToken          string
	RefreshTokenExpiresAt time.Time
	Operator              *Operator
}

// Config tunes the service.
type Config struct {
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// MaxFailuresPerAccount failed logins in a row lock the account for
	// LockoutBase, doubling with every further failure up to LockoutMax.
	MaxFailuresPerAccount int
	LockoutBase           time.Duration
	LockoutMax            time.Duration
	// MaxFailuresPerAddress failed logins from one client address within
	// AddressWindow refuse further attempts from it until the window ends.
	MaxFailuresPerAddress int
	AddressWindow         time.Duration
}

// DefaultConfig is what the server uses unless told otherwise.
func DefaultConfig() Config {
	return Config{
		AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour,
		MaxFailuresPerAccount: 5, LockoutBase: 30 * time.Second, LockoutMax: 15 * time.Minute,
		MaxFailuresPerAddress: 20, AddressWindow: 5 * time.Minute,
	}
}

// Service authenticates operators and manages their sessions.
type Service struct {
	db     *bun.DB
	signer *Signer
	cfg    Config
	byAddr *AddressLimiter
}

// NewService returns a service issuing tokens with signer.
func NewService(db *bun.DB, signer *Signer, cfg Config) *Service {
	return &Service{db: db, signer: signer, cfg: cfg, byAddr: NewAddressLimiter(cfg.MaxFailuresPerAddress, cfg.AddressWindow)}
}

// Signer returns the access-token signer (the HTTP layer verifies with it).
func (s *Service) Signer() *Signer { return s.signer }

type operatorRow struct {
	Operator
	PasswordHash string     `bun:"password_hash"`
	FailedLogins int        `bun:"failed_logins"`
	LockedUntil  *time.Time `bun:"locked_until"`
	Disabled     bool       `bun:"disabled"`
}

const operatorColumns = `o.id, o.org_id, g.name AS org_name, o.email, o.name, o.role, o.created_at, o.password_hash, o.failed_logins, o.locked_until, o.disabled`

var errBadCredentials = apperr.New(apperr.Unauthenticated, "wrong e-mail or password")

// Login checks an e-mail and password and opens a session. Failures are
// throttled per account (stored, so every replica sees them) and per client
// address.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (*Session, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if wait := s.byAddr.BlockedFor(clientAddr); wait > 0 {
		return nil, rateLimited("too many failed logins from this address", wait)
	}
	var row operatorRow
	err := s.db.NewRaw(`SELECT `+operatorColumns+` FROM operators o JOIN organisations g ON g.id = o.org_id WHERE o.email = ?`, email).Scan(ctx, &row)
	if err != nil && !isNoRows(err) {
		return nil, fmt.Errorf("auth: load operator: %w", err)
	}
	known := err == nil
	if known && row.LockedUntil != nil && row.LockedUntil.After(time.Now()) {
		s.byAddr.Fail(clientAddr)
		return nil, rateLimited("too many failed logins for this account", time.Until(*row.LockedUntil))
	}
	hash := dummyHash()
	if known {
		hash = row.PasswordHash
	}
	ok, err := VerifySecret(ctx, hash, password)
	if err != nil {
		return nil, fmt.Errorf("auth: verify password: %w", err)
	}
	if !known || !ok || row.Disabled {
		s.byAddr.Fail(clientAddr)
		if known {
			if err := s.recordFailure(ctx, row.ID, row.FailedLogins+1); err != nil {
				return nil, err
			}
		}
		return nil, errBadCredentials
	}
	if _, err := s.db.NewRaw(`UPDATE operators SET failed_logins = 0, locked_until = NULL WHERE id = ?`, row.ID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("auth: reset failed logins: %w", err)
	}
	op := row.Operator
	var sess *Session
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		sess, err = s.openSession(ctx, tx, &op, uuid.New())
		if err != nil {
			return err
		}
		return audit.Write(caller.WithPrincipal(ctx, op.principal()), tx, audit.Event{OrgID: op.OrgID, Action: "operator.login", TargetKind: "operator", TargetID: op.ID.String()})
	})
	return sess, err
}

func (s *Service) recordFailure(ctx context.Context, id uuid.UUID, failures int) error {
	var lockedUntil *time.Time
	if over := failures - s.cfg.MaxFailuresPerAccount; over >= 0 {
		d := time.Duration(float64(s.cfg.LockoutBase) * math.Pow(2, float64(min(over, 20))))
		d = min(d, s.cfg.LockoutMax)
		t := time.Now().Add(d)
		lockedUntil = &t
	}
	if _, err := s.db.NewRaw(`UPDATE operators SET failed_logins = ?, locked_until = ? WHERE id = ?`, failures, lockedUntil, id).Exec(ctx); err != nil {
		return fmt.Errorf("auth: record failed login: %w", err)
	}
	return nil
}

func rateLimited(msg string, wait time.Duration) error {
	secs := int(math.Ceil(wait.Seconds()))
	e := apperr.New(apperr.RateLimited, "%s: try again in %d s", msg, secs)
	e.Extra = map[string]any{"retryAfterSeconds": secs}
	return e
}

func (op *Operator) principal() *caller.Principal {
	return &caller.Principal{OperatorID: op.ID, OrgID: op.OrgID, Role: op.Role, Email: op.Email}
}

func (s *Service) openSession(ctx context.Context, tx bun.IDB, op *Operator, family uuid.UUID) (*Session, error) {
	access, accessExp, err := s.signer.Issue(op.principal())
	if err != nil {
		return nil, err
	}
	refresh, refreshHash := NewOpaqueToken()
	refreshExp := time.Now().Add(s.cfg.RefreshTTL)
	if _, err := tx.NewRaw(`INSERT INTO refresh_tokens (family_id, operator_id, org_id, token_hash, expires_at) VALUES (?, ?, ?, ?, ?)`,
		family, op.ID, op.OrgID, refreshHash, refreshExp).Exec(ctx); err != nil {
		return nil, fmt.Errorf("auth: store refresh token: %w", err)
	}
	return &Session{AccessToken: access, AccessTokenExpiresAt: accessExp, RefreshToken: refresh, RefreshTokenExpiresAt: refreshExp, Operator: op}, nil
}

var errBadRefresh = apperr.New(apperr.Unauthenticated, "refresh token is invalid, expired or revoked")

// Refresh exchanges a refresh token for a new session. Each refresh token
// works once; presenting one that was already exchanged revokes every token
// of its login, since only a thief or a replay would do that.
func (s *Service) Refresh(ctx context.Context, token string) (*Session, error) {
	var sess *Session
	var reuse bool
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var rt struct {
			ID        uuid.UUID  `bun:"id"`
			FamilyID  uuid.UUID  `bun:"family_id"`
			Operator  uuid.UUID  `bun:"operator_id"`
			ExpiresAt time.Time  `bun:"expires_at"`
			UsedAt    *time.Time `bun:"used_at"`
			RevokedAt *time.Time `bun:"revoked_at"`
		}
		err := tx.NewRaw(`SELECT id, family_id, operator_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = ? FOR UPDATE`, HashToken(token)).Scan(ctx, &rt)
		if isNoRows(err) {
			return errBadRefresh
		}
		if err != nil {
			return fmt.Errorf("auth: load refresh token: %w", err)
		}
		if rt.RevokedAt != nil || time.Now().After(rt.ExpiresAt) {
			return errBadRefresh
		}
		var row operatorRow
		if err := tx.NewRaw(`SELECT `+operatorColumns+` FROM operators o JOIN organisations g ON g.id = o.org_id WHERE o.id = ?`, rt.Operator).Scan(ctx, &row); err != nil {
			if isNoRows(err) {
				return errBadRefresh
			}
			return fmt.Errorf("auth: load operator: %w", err)
		}
		op := row.Operator
		// Refreshing carries no access token: the event is the operator's.
		actx := caller.WithPrincipal(ctx, op.principal())
		if rt.UsedAt != nil {
			reuse = true
			if _, err := tx.NewRaw(`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ? AND revoked_at IS NULL`, rt.FamilyID).Exec(ctx); err != nil {
				return fmt.Errorf("auth: revoke sessions: %w", err)
			}
			return audit.Write(actx, tx, audit.Event{OrgID: op.OrgID, Action: "operator.refresh_reused", TargetKind: "operator", TargetID: op.ID.String(),
				Details: map[string]any{"family": rt.FamilyID, "revoked": true}})
		}
		if row.Disabled {
			return errBadRefresh
		}
		if _, err := tx.NewRaw(`UPDATE refresh_tokens SET used_at = now() WHERE id = ?`, rt.ID).Exec(ctx); err != nil {
			return fmt.Errorf("auth: mark refresh token used: %w", err)
		}
		sess, err = s.openSession(ctx, tx, &op, rt.FamilyID)
		if err != nil {
			return err
		}
		return audit.Write(actx, tx, audit.Event{OrgID: op.OrgID, Action: "operator.refresh", TargetKind: "operator", TargetID: op.ID.String(),
			Details: map[string]any{"family": rt.FamilyID}})
	})
	if err != nil {
		return nil, err
	}
	if reuse {
		return nil, apperr.New(apperr.Unauthenticated, "refresh token was already used; every session of that login is now revoked")
	}
	return sess, nil
}

// Logout revokes the login the refresh token belongs to.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var revoked []struct {
			Operator uuid.UUID `bun:"operator_id"`
			Family   uuid.UUID `bun:"family_id"`
		}
		if err := tx.NewRaw(`UPDATE refresh_tokens SET revoked_at = now()
			WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?) AND revoked_at IS NULL
			RETURNING operator_id, family_id`, HashToken(token)).Scan(ctx, &revoked); err != nil && !isNoRows(err) {
			return fmt.Errorf("auth: revoke refresh tokens: %w", err)
		}
		if len(revoked) == 0 {
			return errBadRefresh
		}
		var row operatorRow
		if err := tx.NewRaw(`SELECT `+operatorColumns+` FROM operators o JOIN organisations g ON g.id = o.org_id WHERE o.id = ?`, revoked[0].Operator).Scan(ctx, &row); err != nil {
			return fmt.Errorf("auth: load operator: %w", err)
		}
		op := row.Operator
		return audit.Write(caller.WithPrincipal(ctx, op.principal()), tx, audit.Event{OrgID: op.OrgID, Action: "operator.logout", TargetKind: "operator",
			TargetID: op.ID.String(), Details: map[string]any{"family": revoked[0].Family}})
	})
}

// Me returns the calling operator.
func (s *Service) Me(ctx context.Context) (*Operator, error) {
	p, err := caller.Require(ctx, caller.RoleViewer)
	if err != nil {
		return nil, err
	}
	var row operatorRow
	err = s.db.NewRaw(`SELECT `+operatorColumns+` FROM operators o JOIN organisations g ON g.id = o.org_id WHERE o.id = ? AND o.org_id = ?`, p.OperatorID, p.OrgID).Scan(ctx, &row)
	if isNoRows(err) {
		return nil, apperr.New(apperr.Unauthenticated, "operator no longer exists")
	}
	if err != nil {
		return nil, fmt.Errorf("auth: load operator: %w", err)
	}
	return &row.Operator, nil
}

// NewOperator describes an operator to create.
type NewOperator struct {
	OrgID    uuid.UUID
	Email    string
	Name     string
	Role     caller.Role
	Password string
}

func checkPassword(fs *apperr.Fields, path, pw string) {
	if len([]rune(pw)) < minPasswordLength {
		fs.Add(path, "must be at least %d characters", minPasswordLength)
	}
	if len(pw) > 1024 {
		fs.Add(path, "must be at most 1024 bytes")
	}
}

// CreateOperator adds an operator. It is an administrative action of the
// command line, which runs with the database's own authority.
func (s *Service) CreateOperator(ctx context.Context, in NewOperator) (*Operator, error) {
	var fs apperr.Fields
	email := strings.ToLower(strings.TrimSpace(in.Email))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		fs.Add("email", "not a valid e-mail address")
	}
	if !in.Role.Valid() {
		fs.Add("role", "must be ADMIN, OPERATOR or VIEWER")
	}
	checkPassword(&fs, "password", in.Password)
	if err := fs.Err(); err != nil {
		return nil, err
	}
	hash, err := HashSecret(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	var op Operator
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var taken bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM operators WHERE email = ?)`, email).Scan(ctx, &taken); err != nil {
			return fmt.Errorf("auth: check e-mail: %w", err)
		}
		if taken {
			return apperr.New(apperr.Conflict, "an operator with e-mail %s already exists", email)
		}
		if err := tx.NewRaw(`WITH o AS (INSERT INTO operators (org_id, email, name, role, password_hash) VALUES (?, ?, ?, ?, ?) RETURNING *)
			SELECT o.id, o.org_id, g.name AS org_name, o.email, o.name, o.role, o.created_at FROM o JOIN organisations g ON g.id = o.org_id`,
			in.OrgID, email, in.Name, in.Role, hash).Scan(ctx, &op); err != nil {
			return fmt.Errorf("auth: insert operator: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: op.OrgID, Action: "operator.create", TargetKind: "operator", TargetID: op.ID.String(),
			Details: map[string]any{"email": email, "role": in.Role}})
	})
	if err != nil {
		return nil, err
	}
	return &op, nil
}

// SetPassword replaces an operator's password, clears its lockout and
// revokes its sessions.
func (s *Service) SetPassword(ctx context.Context, email, password string) error {
	var fs apperr.Fields
	checkPassword(&fs, "password", password)
	if err := fs.Err(); err != nil {
		return err
	}
	hash, err := HashSecret(ctx, password)
	if err != nil {
		return err
	}
	email = strings.ToLower(strings.TrimSpace(email))
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var op struct {
			ID    uuid.UUID `bun:"id"`
			OrgID uuid.UUID `bun:"org_id"`
		}
		err := tx.NewRaw(`UPDATE operators SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = now() WHERE email = ? RETURNING id, org_id`, hash, email).Scan(ctx, &op)
		if isNoRows(err) {
			return apperr.NotFoundf("no operator with e-mail %s", email)
		}
		if err != nil {
			return fmt.Errorf("auth: set password: %w", err)
		}
		if _, err := tx.NewRaw(`UPDATE refresh_tokens SET revoked_at = now() WHERE operator_id = ? AND revoked_at IS NULL`, op.ID).Exec(ctx); err != nil {
			return fmt.Errorf("auth: revoke sessions: %w", err)
		}
		return audit.Write(ctx, tx, audit.Event{OrgID: op.OrgID, Action: "operator.set_password", TargetKind: "operator", TargetID: op.ID.String()})
	})
}

// ListOperators returns every operator of every organisation (command line).
func (s *Service) ListOperators(ctx context.Context) ([]Operator, error) {
	var ops []Operator
	err := s.db.NewRaw(`SELECT o.id, o.org_id, g.name AS org_name, o.email, o.name, o.role, o.created_at
		FROM operators o JOIN organisations g ON g.id = o.org_id ORDER BY g.name, o.email`).Scan(ctx, &ops)
	if err != nil {
		return nil, fmt.Errorf("auth: list operators: %w", err)
	}
	return ops, nil
}

// CreateOrganisation adds a tenant.
func (s *Service) CreateOrganisation(ctx context.Context, name string) (uuid.UUID, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return uuid.Nil, apperr.Validation(apperr.FieldError{Path: "name", Reason: "must not be empty"})
	}
	var id uuid.UUID
	if err := s.db.NewRaw(`INSERT INTO organisations (name) VALUES (?) RETURNING id`, name).Scan(ctx, &id); err != nil {
		return uuid.Nil, fmt.Errorf("auth: create organisation: %w", err)
	}
	return id, nil
}

// OrganisationByName finds a tenant by name.
func (s *Service) OrganisationByName(ctx context.Context, name string) (uuid.UUID, error) {
	var id uuid.UUID
	err := s.db.NewRaw(`SELECT id FROM organisations WHERE name = ?`, name).Scan(ctx, &id)
	if isNoRows(err) {
		return uuid.Nil, apperr.NotFoundf("no organisation named %q", name)
	}
	if err != nil {
		return uuid.Nil, fmt.Errorf("auth: find organisation: %w", err)
	}
	return id, nil
}

// BootstrapResult is what the first start created.
type BootstrapResult struct {
	Email    string
	Password string
}

// Bootstrap creates a default organisation and an admin with a one-time
// random password when the database has no organisation yet. It returns
// nil when there was nothing to do. The advisory lock keeps two replicas
// starting together from both doing it.
func (s *Service) Bootstrap(ctx context.Context, orgName, adminEmail string) (*BootstrapResult, error) {
	var res *BootstrapResult
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewRaw(`SELECT pg_advisory_xact_lock(7001)`).Exec(ctx); err != nil {
			return fmt.Errorf("auth: bootstrap lock: %w", err)
		}
		var exists bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM organisations)`).Scan(ctx, &exists); err != nil {
			return fmt.Errorf("auth: check organisations: %w", err)
		}
		if exists {
			return nil
		}
		pw := RandomPassword()
		hash, err := HashSecret(ctx, pw)
		if err != nil {
			return err
		}
		var orgID uuid.UUID
		if err := tx.NewRaw(`INSERT INTO organisations (name) VALUES (?) RETURNING id`, orgName).Scan(ctx, &orgID); err != nil {
			return fmt.Errorf("auth: create default organisation: %w", err)
		}
		var opID uuid.UUID
		if err := tx.NewRaw(`INSERT INTO operators (org_id, email, name, role, password_hash) VALUES (?, ?, 'Administrator', 'ADMIN', ?) RETURNING id`,
			orgID, adminEmail, hash).Scan(ctx, &opID); err != nil {
			return fmt.Errorf("auth: create admin: %w", err)
		}
		res = &BootstrapResult{Email: adminEmail, Password: pw}
		return audit.Write(ctx, tx, audit.Event{OrgID: orgID, Action: "organisation.bootstrap", TargetKind: "operator", TargetID: opID.String()})
	})
	return res, err
}
