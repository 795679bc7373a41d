package exports

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lintel/lintel/internal/apperr"
)

// File is an export's stored file, ready to be streamed.
type File struct {
	Name   string
	Size   int64
	SHA256 string
	io.Reader
}

// Open checks a download link's query for export id and opens the file.
// The link is the credential: a tampered, expired or malformed one is
// FORBIDDEN before the database is asked anything; a valid link whose
// export does not exist in the link's organisation, or whose file is gone,
// is NOT_FOUND.
func (s *Service) Open(ctx context.Context, id uuid.UUID, q url.Values) (*File, error) {
	org, err := s.links.Verify(id, q)
	if err != nil {
		return nil, err
	}
	e, err := s.get(ctx, s.db.Pool, org, id)
	if err != nil {
		return nil, err
	}
	if e.Status != Succeeded || e.Size == nil || e.SHA256 == nil {
		return nil, apperr.NotFoundf("export %s has no file (%s)", id, e.Status)
	}
	return &File{Name: e.FileName, Size: int64(*e.Size), SHA256: *e.SHA256, Reader: &chunkReader{ctx: ctx, pool: s.db.Pool, id: id}}, nil
}

// chunkReader streams a stored file one chunk at a time, each read with
// its own query, so a slow client holds no database connection between
// chunks.
type chunkReader struct {
	ctx  context.Context
	pool *pgxpool.Pool
	id   uuid.UUID
	seq  int
	buf  []byte
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.done {
			return 0, io.EOF
		}
		var data []byte
		err := c.pool.QueryRow(c.ctx, `SELECT data FROM export_chunks WHERE export_id = $1 AND seq = $2`, c.id, c.seq).Scan(&data)
		if errors.Is(err, pgx.ErrNoRows) {
			c.done = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("exports: read chunk %d: %w", c.seq, err)
		}
		c.seq++
		c.buf = data
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
