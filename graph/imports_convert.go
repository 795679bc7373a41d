package graph

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/events"
	"github.com/lintel/lintel/internal/imports"
)

// importOptions applies an options input over base; it also returns the
// file-reading settings when the input names any.
func importOptions(base imports.Options, in *model.ImportOptionsInput) (imports.Options, *imports.FileSettings) {
	if in == nil {
		return base, nil
	}
	o := base
	if v := in.Mode.Value(); v != nil {
		o.Mode = *v
	}
	if v := in.MissingAction.Value(); v != nil {
		o.MissingAction = *v
	}
	if v := in.MatchOn.Value(); v != nil {
		o.MatchOn = *v
	}
	if v := in.Overwrite.Value(); v != nil {
		o.Overwrite = *v
	}
	if in.UpdateFields.IsSet() {
		o.UpdateFields = in.UpdateFields.Value()
	}
	if in.CardIDFormat.IsSet() {
		o.CardIDFormat = derefOr(in.CardIDFormat.Value(), "")
	}
	if in.DefaultValidFrom.IsSet() {
		o.DefaultValidFrom = in.DefaultValidFrom.Value()
	}
	if in.DefaultExpiresAt.IsSet() {
		o.DefaultExpiresAt = in.DefaultExpiresAt.Value()
	}
	if v := in.InvalidRows.Value(); v != nil {
		o.InvalidRows = *v
	}
	if v := in.SendInvitations.Value(); v != nil {
		o.SendInvitations = *v
	}
	if v := in.NotifyRemoved.Value(); v != nil {
		o.NotifyRemoved = *v
	}
	var fs *imports.FileSettings
	if in.Encoding.IsSet() || in.Delimiter.IsSet() || in.HeaderRow.IsSet() {
		fs = &imports.FileSettings{Encoding: derefOr(in.Encoding.Value(), ""), Delimiter: derefOr(in.Delimiter.Value(), ""), HeaderRow: derefOr(in.HeaderRow.Value(), 0)}
	}
	return o, fs
}

func columnMapping(in []model.ColumnMappingInput) []imports.ColumnMapping {
	if in == nil {
		return nil
	}
	out := make([]imports.ColumnMapping, len(in))
	for i, m := range in {
		out[i] = imports.ColumnMapping{Column: m.Column, Field: derefOr(m.Field.Value(), "")}
	}
	return out
}

func rowConnection(p *imports.RowPage) *model.ImportRowConnection {
	conn := &model.ImportRowConnection{PageInfo: &model.PageInfo{HasNextPage: p.HasNext}}
	for i := range p.Rows {
		conn.Edges = append(conn.Edges, model.ImportRowEdge{Cursor: p.Cursors[i], Node: &p.Rows[i]})
	}
	if n := len(p.Cursors); n > 0 {
		conn.PageInfo.StartCursor, conn.PageInfo.EndCursor = &p.Cursors[0], &p.Cursors[n-1]
	}
	return conn
}

func timingList(m map[string]float64) []model.PhaseTiming {
	var out []model.PhaseTiming
	for _, ph := range []string{"parsing", "validating", "applying", "notifying"} {
		if v, ok := m[ph]; ok {
			out = append(out, model.PhaseTiming{Phase: ph, Seconds: v})
		}
	}
	// Then the statements within them ("step: …"), slowest first.
	var steps []model.PhaseTiming
	for k, v := range m {
		if strings.HasPrefix(k, "step: ") {
			steps = append(steps, model.PhaseTiming{Phase: k, Seconds: v})
		}
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].Seconds > steps[j].Seconds })
	return append(out, steps...)
}

// randomAccess gives a ZIP upload the random access archive/zip needs,
// spooling it to a temporary file when the transport did not keep one.
func randomAccess(up graphql.Upload) (io.ReaderAt, int64, func(), error) {
	if ra, ok := up.File.(io.ReaderAt); ok {
		return ra, up.Size, func() {}, nil
	}
	f, err := os.CreateTemp("", "lintel-zip-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool zip upload: %w", err)
	}
	done := func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}
	n, err := io.Copy(f, up.File)
	if err != nil {
		done()
		return nil, 0, nil, apperr.New(apperr.Invalid, "zip: upload could not be read: %v", err)
	}
	return f, n, done, nil
}

// importProgressOf is an import progress event as importProgress sends it.
func importProgressOf(ev *events.Event) (p *imports.Progress, ok, last bool) {
	v, err := ev.Decoded(decodeImportProgress)
	if err != nil {
		return nil, false, false
	}
	return v.(*imports.Progress), true, false
}

// decodeImportProgress decodes a progress event's data for
// events.Event.Decoded: once per event for all of its subscribers.
func decodeImportProgress(data json.RawMessage) (any, error) {
	p, err := imports.ParseProgress(data)
	return &p, err
}
