package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/lintel/lintel/internal/credentials"
	"github.com/lintel/lintel/readers/gateway/accesslist"
)

// Syncer keeps an access list in step with the server: it pulls the
// access-list and revocation feeds when the server pushes a change over
// the accessListChanged subscription, every poll interval as a fallback,
// and with backoff while the server is unreachable. It writes the list to
// its snapshot file after changes, at most once per SnapshotEvery, and
// once more when it stops. Doors never wait for it: decisions read the
// list while pages are applied.
type Syncer struct {
	list          *accesslist.List
	client        *client
	log           *slog.Logger
	metrics       *metrics
	poll          time.Duration
	snapshotPath  string
	snapshotEvery time.Duration
	pageSize      int
	// onConnect is called when the subscription is (re)established: the
	// server is reachable again, so whatever waits for it can try now.
	onConnect func()

	mu      sync.Mutex // one pull at a time
	keys    []credentials.PublicKey
	trigger chan struct{}
	dirty   chan struct{}

	lastSync atomic.Int64 // Unix nanoseconds of the last complete pull; 0 before the first
	lastHint atomic.Int64 // Unix nanoseconds of the last Hint that triggered a pull
	started  time.Time
}

func newSyncer(list *accesslist.List, c *client, log *slog.Logger, m *metrics, cfg *Config, snapshotPath string) *Syncer {
	s := &Syncer{list: list, client: c, log: log, metrics: m, poll: cfg.Poll, snapshotPath: snapshotPath,
		snapshotEvery: cfg.SnapshotEvery, pageSize: 10000, onConnect: func() {},
		trigger: make(chan struct{}, 1), dirty: make(chan struct{}, 1), started: time.Now()}
	if t := list.SyncedAt(); !t.IsZero() {
		s.lastSync.Store(t.UnixNano())
	}
	return s
}

// Trigger asks for a pull as soon as the current one, if any, is done.
func (s *Syncer) Trigger() {
	select {
	case s.trigger <- struct{}{}:
	default:
	}
}

// hintEvery bounds the pulls Hint asks for: a scanner showing one bad
// code after another must not turn into a pull per scan.
const hintEvery = time.Second

// Hint asks for a pull because a decision suggests the list is behind,
// at most once per hintEvery.
func (s *Syncer) Hint() {
	now := time.Now().UnixNano()
	last := s.lastHint.Load()
	if now-last < int64(hintEvery) || !s.lastHint.CompareAndSwap(last, now) {
		return
	}
	s.Trigger()
}

// LastSync returns when the last complete pull ended (or, before the
// first, when the snapshot's was), or the zero time.
func (s *Syncer) LastSync() time.Time {
	if n := s.lastSync.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// lag is the time since the last complete sync, or since the gateway
// started if it never had one.
func (s *Syncer) lag() time.Duration {
	t := s.LastSync()
	if t.IsZero() {
		t = s.started
	}
	return time.Since(t)
}

// Run pulls until ctx ends; it also keeps the subscription and writes
// snapshots. It returns after the last snapshot is written.
func (s *Syncer) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.subscribeLoop(ctx) })
	wg.Go(func() { s.saveLoop(ctx) })
	defer wg.Wait()

	b := backoff{min: 200 * time.Millisecond, max: min(s.poll, 10*time.Second)}
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trigger:
		case <-timer.C:
		}
		start := time.Now()
		err := s.Pull(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.metrics.syncs.WithLabelValues("error").Inc()
			failures++
			wait := b.next()
			switch {
			case failures == 1 && refused(err):
				s.log.Error("the server refuses this gateway's token; deciding from the list held", "err", err, "records", s.list.Len())
			case failures == 1:
				s.log.Warn("access-list sync failed; deciding from the list held", "err", err, "records", s.list.Len(), "retry_in", wait.Round(time.Millisecond))
			default:
				s.log.Debug("access-list sync failed again", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
			}
			timer.Reset(wait)
			continue
		}
		s.metrics.syncs.WithLabelValues("ok").Inc()
		if failures > 0 {
			s.log.Info("access list synced again", "after_failures", failures, "records", s.list.Len(), "cursor", s.list.Cursor())
		}
		s.log.Debug("access list synced", "records", s.list.Len(), "cursor", s.list.Cursor(), "took", time.Since(start))
		failures = 0
		b.reset()
		timer.Reset(s.poll)
	}
}

// Pull brings the list up to date with both feeds and the issuing keys.
func (s *Syncer) Pull(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed, err := s.pullAccessList(ctx)
	if changed {
		s.markDirty()
	}
	if err != nil {
		return fmt.Errorf("access list: %w", err)
	}
	changed, err = s.pullRevocations(ctx)
	if changed {
		s.markDirty()
	}
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	s.lastSync.Store(time.Now().UnixNano())
	return nil
}

const accessListQuery = `query($since: String, $first: Int) { accessList(since: $since, first: $first) {
	entries { recordId templateId cardId status validFrom expiresAt removed }
	full cursor hasMore version issuingKeys { kid publicKey retired } } }`

type accessListPage struct {
	Entries []struct {
		RecordID   uuid.UUID  `json:"recordId"`
		TemplateID uuid.UUID  `json:"templateId"`
		CardID     string     `json:"cardId"`
		Status     string     `json:"status"`
		ValidFrom  *time.Time `json:"validFrom"`
		ExpiresAt  *time.Time `json:"expiresAt"`
		Removed    bool       `json:"removed"`
	} `json:"entries"`
	Full        bool   `json:"full"`
	Cursor      string `json:"cursor"`
	HasMore     bool   `json:"hasMore"`
	IssuingKeys []struct {
		Kid       string `json:"kid"`
		PublicKey string `json:"publicKey"`
		Retired   bool   `json:"retired"`
	} `json:"issuingKeys"`
}

// pullAccessList follows the access-list feed to its end: a full sync when
// the list holds no delta cursor (never synced, or interrupted mid-way),
// then the changes. It reports whether the list changed.
func (s *Syncer) pullAccessList(ctx context.Context) (changed bool, err error) {
	cursor := s.list.Cursor()
	if !strings.HasPrefix(cursor, "d:") {
		cursor = ""
	}
	inFull := cursor == ""
	restarted := false
	var full []accesslist.Entry
	for {
		vars := map[string]any{"first": s.pageSize}
		if cursor != "" {
			vars["since"] = cursor
		}
		var out struct {
			AccessList accessListPage `json:"accessList"`
		}
		if err := s.client.do(ctx, accessListQuery, vars, &out); err != nil {
			if !inFull && !restarted && codeOf(err) == "VALIDATION_FAILED" {
				// The server does not know our cursor (its database was
				// restored, say): read the whole list again.
				s.log.Warn("the server refused the access-list cursor held; syncing the whole list again", "cursor", cursor, "err", err)
				cursor, inFull, restarted, full = "", true, true, nil
				continue
			}
			return changed, err
		}
		page := &out.AccessList
		if s.setKeys(page) {
			changed = true
		}
		if page.Full {
			for _, e := range page.Entries {
				full = append(full, accesslist.Entry{RecordID: e.RecordID, TemplateID: e.TemplateID, CardID: e.CardID,
					Status: e.Status, ValidFrom: e.ValidFrom, ExpiresAt: e.ExpiresAt})
			}
			if strings.HasPrefix(page.Cursor, "d:") {
				// The last full page: the list is complete, swap it in.
				s.list.ReplaceAll(full, page.Cursor)
				s.log.Info("full access list received", "records", len(full), "cursor", page.Cursor)
				full, inFull, changed = nil, false, true
			}
		} else if len(page.Entries) > 0 || page.Cursor != cursor {
			changes := make([]accesslist.Change, len(page.Entries))
			for i, e := range page.Entries {
				changes[i] = accesslist.Change{Entry: accesslist.Entry{RecordID: e.RecordID, TemplateID: e.TemplateID, CardID: e.CardID,
					Status: e.Status, ValidFrom: e.ValidFrom, ExpiresAt: e.ExpiresAt}, Removed: e.Removed}
			}
			s.list.Apply(changes, page.Cursor)
			changed = true
		}
		if page.Cursor == "" {
			return changed, fmt.Errorf("the server sent an empty cursor")
		}
		cursor = page.Cursor
		if !page.HasMore {
			if inFull {
				return changed, fmt.Errorf("the full list ended without a delta cursor (last cursor %q)", cursor)
			}
			return changed, nil
		}
	}
}

// setKeys makes the page's issuing keys the list's, if they differ from
// the keys held; it reports whether they did.
func (s *Syncer) setKeys(page *accessListPage) bool {
	keys := make([]credentials.PublicKey, 0, len(page.IssuingKeys))
	for _, k := range page.IssuingKeys {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(k.PublicKey, "="))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			s.log.Warn("issuing key ignored: not a base64url Ed25519 public key", "kid", k.Kid)
			continue
		}
		keys = append(keys, credentials.PublicKey{Kid: k.Kid, Key: ed25519.PublicKey(raw), Retired: k.Retired})
	}
	if sameKeys(keys, s.keys) {
		return false
	}
	s.keys = keys
	s.list.SetKeys(keys)
	return true
}

func sameKeys(a, b []credentials.PublicKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kid != b[i].Kid || a[i].Retired != b[i].Retired || !bytes.Equal(a[i].Key, b[i].Key) {
			return false
		}
	}
	return true
}

const revocationsQuery = `query($since: String, $first: Int) { revocations(since: $since, first: $first) {
	items { credentialId } cursor hasMore } }`

// pullRevocations follows the revocation feed to its end.
func (s *Syncer) pullRevocations(ctx context.Context) (changed bool, err error) {
	cursor := s.list.RevocationCursor()
	restarted := false
	for {
		vars := map[string]any{"first": s.pageSize}
		if cursor != "" {
			vars["since"] = cursor
		}
		var out struct {
			Revocations struct {
				Items []struct {
					CredentialID uuid.UUID `json:"credentialId"`
				} `json:"items"`
				Cursor  string `json:"cursor"`
				HasMore bool   `json:"hasMore"`
			} `json:"revocations"`
		}
		if err := s.client.do(ctx, revocationsQuery, vars, &out); err != nil {
			if cursor != "" && !restarted && codeOf(err) == "VALIDATION_FAILED" {
				s.log.Warn("the server refused the revocation cursor held; reading every revocation again", "cursor", cursor, "err", err)
				cursor, restarted = "", true
				continue
			}
			return changed, err
		}
		page := &out.Revocations
		if len(page.Items) > 0 || page.Cursor != cursor {
			ids := make([]uuid.UUID, len(page.Items))
			for i, it := range page.Items {
				ids[i] = it.CredentialID
			}
			s.list.ApplyRevocations(ids, page.Cursor)
			changed = true
		}
		cursor = page.Cursor
		if !page.HasMore {
			return changed, nil
		}
	}
}

const accessListChanged = `subscription { accessListChanged { kind } }`

// subscribeLoop keeps the accessListChanged subscription open and pulls
// on every push, and once on every (re)connection for what was missed
// while disconnected.
func (s *Syncer) subscribeLoop(ctx context.Context) {
	b := backoff{min: 200 * time.Millisecond, max: 10 * time.Second}
	failures := 0
	for {
		var readyAt time.Time
		err := s.client.subscribe(ctx, accessListChanged, func() {
			readyAt = time.Now()
			s.metrics.subscribed.Set(1)
			if failures > 0 {
				s.log.Info("subscribed to access-list changes again", "after_failures", failures)
			} else {
				s.log.Info("subscribed to access-list changes")
			}
			failures = 0
			s.Trigger()
			s.onConnect()
		}, func(json.RawMessage) {
			s.metrics.pushes.Inc()
			s.Trigger()
		})
		s.metrics.subscribed.Set(0)
		if ctx.Err() != nil {
			return
		}
		// A connection that lasted a while was healthy: start the backoff
		// over, so a server restart is noticed quickly.
		if !readyAt.IsZero() && time.Since(readyAt) > 10*time.Second {
			b.reset()
		}
		failures++
		wait := b.next()
		if failures == 1 {
			s.log.Warn("access-list subscription lost; polling until it is back", "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			s.log.Debug("access-list subscription failed again", "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

func (s *Syncer) markDirty() {
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// saveLoop writes the snapshot after changes, at most once per
// snapshotEvery, and a last time when ctx ends with changes unsaved.
func (s *Syncer) saveLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			select {
			case <-s.dirty:
				s.save()
			default:
			}
			return
		case <-s.dirty:
		}
		if wait := s.snapshotEvery - time.Since(last); wait > 0 && !sleep(ctx, wait) {
			s.save()
			return
		}
		// Changes that came in while waiting are in this write too.
		select {
		case <-s.dirty:
		default:
		}
		s.save()
		last = time.Now()
	}
}

func (s *Syncer) save() {
	start := time.Now()
	if err := s.list.Save(s.snapshotPath); err != nil {
		s.metrics.snapshotErrors.Inc()
		s.log.Error("writing the access-list snapshot failed; a restart without the server would use an older one", "path", s.snapshotPath, "err", err)
		return
	}
	s.log.Debug("access-list snapshot written", "path", s.snapshotPath, "records", s.list.Len(), "took", time.Since(start))
}

// refused reports whether the server refused the gateway's token: revoked
// or rotated, which needs an operator, not patience.
func refused(err error) bool {
	code := codeOf(err)
	return code == "UNAUTHENTICATED" || code == "FORBIDDEN"
}

// backoff is an exponential backoff with jitter.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// ±20 %, so gateways that lost the same server do not come back in
	// step.
	return time.Duration(float64(b.cur) * (0.8 + 0.4*rand.Float64()))
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
