package imports

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/cardid"
	"github.com/lintel/lintel/internal/records"
)

// AttrPhoto is the mapping target of a column holding photo file names.
const AttrPhoto = "photo"

// Limits on a photo ZIP: they bound what a small, highly compressed
// archive can make the server unpack.
const (
	maxZipEntries      = 200000
	maxZipUncompressed = 4 << 30
)

// PhotoReport says how an import's photos matched its rows.
type PhotoReport struct {
	Uploaded  int            `json:"uploaded"`
	Matched   int            `json:"matched"`
	Unmatched []string       `json:"unmatched"`
	Invalid   []PhotoProblem `json:"invalid"`
}

// PhotoProblem is a ZIP entry that is not a usable photo.
type PhotoProblem struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// PhotoLimits is what the record store accepts.
type PhotoLimits struct {
	MaxBytes  int64
	MaxPixels int
}

// UploadPhotos stores the JPEG and PNG photos of a ZIP for an import that
// has not run (OPERATOR), replacing photos uploaded before. Each photo is
// matched at preview and apply time to the row whose mapped photo column
// names its file, or else whose card ID is its file name without extension.
func (s *Service) UploadPhotos(ctx context.Context, id uuid.UUID, zr io.ReaderAt, size int64, limits PhotoLimits) (*Import, error) {
	p, err := caller.Require(ctx, caller.RoleOperator)
	if err != nil {
		return nil, err
	}
	imp, err := s.get(ctx, s.db.Pool, p.OrgID, id)
	if err != nil {
		return nil, err
	}
	if imp.Outcome != nil && (*imp.Outcome == Running || *imp.Outcome == Succeeded) {
		return nil, apperr.New(apperr.FailedPrecondition, "import %s has already run or is running", id)
	}
	t, err := s.templates.GetForOrg(ctx, s.db.Bun, p.OrgID, imp.TemplateID, false)
	if err != nil {
		return nil, err
	}
	format := t.CardIDFormat
	if imp.Options.CardIDFormat != "" {
		format = imp.Options.CardIDFormat
	}
	archive, err := zip.NewReader(zr, size)
	if err != nil {
		return nil, apperr.Validation(apperr.FieldError{Path: "zip", Reason: "not a ZIP archive: " + err.Error()})
	}
	if len(archive.File) > maxZipEntries {
		return nil, apperr.Validation(apperr.FieldError{Path: "zip", Reason: fmt.Sprintf("has %d entries, at most %d allowed", len(archive.File), maxZipEntries)})
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM import_photos WHERE import_id = $1`, id); err != nil {
			return fmt.Errorf("imports: clear photos: %w", err)
		}
		var unpacked int64
		seen := map[string]bool{}
		for _, f := range archive.File {
			name := path.Base(f.Name)
			if f.FileInfo().IsDir() || strings.HasPrefix(f.Name, "__MACOSX/") || strings.HasPrefix(name, ".") {
				continue
			}
			problem := func(reason string) error {
				_, err := tx.Exec(ctx, `INSERT INTO import_photos (import_id, name, name_key, error) VALUES ($1, $2, $3, $4)`, id, f.Name, strings.ToLower(name), reason)
				return err
			}
			ext := strings.ToLower(path.Ext(name))
			if ext != ".jpg" && ext != ".jpeg" && ext != ".png" {
				if err := problem("not a .jpg, .jpeg or .png file"); err != nil {
					return err
				}
				continue
			}
			if seen[strings.ToLower(name)] {
				if err := problem("another file in the ZIP has the same name"); err != nil {
					return err
				}
				continue
			}
			seen[strings.ToLower(name)] = true
			if f.UncompressedSize64 > uint64(limits.MaxBytes) {
				if err := problem(fmt.Sprintf("is %d bytes, at most %d allowed", f.UncompressedSize64, limits.MaxBytes)); err != nil {
					return err
				}
				continue
			}
			data, err := readEntry(f, limits.MaxBytes)
			if err != nil {
				if err := problem(err.Error()); err != nil {
					return err
				}
				continue
			}
			if unpacked += int64(len(data)); unpacked > maxZipUncompressed {
				return apperr.Validation(apperr.FieldError{Path: "zip", Reason: fmt.Sprintf("unpacks to more than %d bytes", int64(maxZipUncompressed))})
			}
			ct, reason := records.CheckPhoto(data, limits.MaxBytes, limits.MaxPixels)
			if reason != "" {
				if err := problem(reason); err != nil {
					return err
				}
				continue
			}
			stem := strings.TrimSuffix(name, path.Ext(name))
			var cardKey *string
			if c, err := cardid.Parse(format, stem); err == nil {
				cardKey = &c
			}
			sum := sha256.Sum256(data)
			if _, err := tx.Exec(ctx, `INSERT INTO import_photos (import_id, name, name_key, card_key, content_type, data, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
				id, f.Name, strings.ToLower(name), cardKey, ct, data, sum[:]); err != nil {
				return fmt.Errorf("imports: store photo %s: %w", f.Name, err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE imports SET previewed_at = NULL, preview_counts = NULL, photo_report = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
			return fmt.Errorf("imports: reset preview: %w", err)
		}
		var stored, refused int
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE error IS NULL), count(*) FILTER (WHERE error IS NOT NULL) FROM import_photos WHERE import_id = $1`,
			id).Scan(&stored, &refused); err != nil {
			return fmt.Errorf("imports: count photos: %w", err)
		}
		return s.audit(ctx, tx, imp, "import.photos", map[string]any{"zipSize": size, "photos": stored, "refused": refused})
	})
	if err != nil {
		return nil, err
	}
	return s.get(ctx, s.db.Pool, p.OrgID, id)
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("cannot be unpacked: %v", err)
	}
	defer rc.Close()
	// The header's size may lie; never read past the limit.
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be unpacked: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("is more than %d bytes", limit)
	}
	return data, nil
}

// photoReport describes how the plan's rows matched the import's photos.
func photoReport(ctx context.Context, tx pgx.Tx, id uuid.UUID) (*PhotoReport, error) {
	var uploaded int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM import_photos WHERE import_id = $1`, id).Scan(&uploaded); err != nil {
		return nil, fmt.Errorf("imports: count photos: %w", err)
	}
	if uploaded == 0 {
		return nil, nil
	}
	rep := &PhotoReport{Uploaded: uploaded, Unmatched: []string{}, Invalid: []PhotoProblem{}}
	rows, err := tx.Query(ctx, `SELECT ph.name, ph.error, EXISTS (SELECT 1 FROM import_plan p WHERE p.photo_id = ph.id)
		FROM import_photos ph WHERE ph.import_id = $1 ORDER BY ph.name`, id)
	if err != nil {
		return nil, fmt.Errorf("imports: match photos: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var problem *string
		var matched bool
		if err := rows.Scan(&name, &problem, &matched); err != nil {
			return nil, err
		}
		switch {
		case problem != nil:
			rep.Invalid = append(rep.Invalid, PhotoProblem{Name: name, Reason: *problem})
		case matched:
			rep.Matched++
		default:
			rep.Unmatched = append(rep.Unmatched, name)
		}
	}
	return rep, rows.Err()
}

func savePhotoReport(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	rep, err := photoReport(ctx, tx, id)
	if err != nil {
		return err
	}
	var raw any
	if rep != nil {
		b, _ := json.Marshal(rep)
		raw = string(b)
	}
	_, err = tx.Exec(ctx, `UPDATE imports SET photo_report = $2 WHERE id = $1`, id, raw)
	return err
}
