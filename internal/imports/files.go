package imports

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/lintel/lintel/internal/apperr"
)

// chunkSize is how much of an uploaded file one row of import_chunks holds.
const chunkSize = 1 << 20

// storeFile streams r into import_chunks and returns its size and SHA-256.
// A file over limit is refused with PAYLOAD_TOO_LARGE without reading on.
func storeFile(ctx context.Context, tx pgx.Tx, id uuid.UUID, r io.Reader, limit int64) (int64, []byte, error) {
	h := sha256.New()
	buf := make([]byte, chunkSize)
	var size int64
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			size += int64(n)
			if size > limit {
				return 0, nil, apperr.New(apperr.TooLarge, "file: larger than the %d-byte import limit", limit)
			}
			h.Write(buf[:n])
			if _, err := tx.Exec(ctx, `INSERT INTO import_chunks (import_id, seq, data) VALUES ($1, $2, $3)`, id, seq, buf[:n]); err != nil {
				return 0, nil, fmt.Errorf("imports: store chunk %d: %w", seq, err)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return size, h.Sum(nil), nil
		}
		if err != nil {
			return 0, nil, apperr.New(apperr.Invalid, "file: upload could not be read: %v", err)
		}
	}
}

// rowQuerier reads one row; pools, connections and transactions all do.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// chunkReader streams a stored file back, one chunk in memory at a time.
type chunkReader struct {
	ctx  context.Context
	db   rowQuerier
	id   uuid.UUID
	seq  int
	buf  []byte
	done bool
}

func openFile(ctx context.Context, db rowQuerier, id uuid.UUID) *chunkReader {
	return &chunkReader{ctx: ctx, db: db, id: id}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		var data []byte
		err := c.db.QueryRow(c.ctx, `SELECT data FROM import_chunks WHERE import_id = $1 AND seq = $2`, c.id, c.seq).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			c.done = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("imports: read chunk %d: %w", c.seq, err)
		}
		c.seq++
		c.buf = data
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
