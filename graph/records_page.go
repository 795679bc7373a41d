package graph

// A page of records is what consoles ask for most, and gqlgen's executor
// spends most of such a request on bookkeeping rather than on the records:
// a goroutine for every list element and resolver field, a field context
// and a context value for every one of the page's ~2,000 fields, and the
// selection collected again for every record. The page renderer writes a
// records connection's JSON directly instead: it collects each selection
// once per page, renders a template once per page however many records
// share it, and writes every value with the same encoding as gqlgen's own
// marshallers, so the response is byte-for-byte what the executor would
// have written (TestTheRecordsPageRendererAnswersLikeTheExecutor).
//
// Only the marshalling is replaced. gqlgen still parses, validates and
// prices the operation, decodes the arguments, runs the @hasRole directive
// and the records resolver; nested values come from the same field
// resolvers (template, fields, totalCount…). A selection the renderer does
// not know (a field added to the schema later, one with arguments it does
// not handle, @defer) or a resolver error anywhere in the page leaves the
// whole field to gqlgen, which then answers exactly as without it.

import (
	"context"
	"io"
	"iter"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// pageFields lists, for each object type of a records page, the fields the
// renderer writes and the object type each leads to ("" for a scalar, an
// enum or a list of them).
var pageFields = map[string]map[string]string{
	"CardRecordConnection": {"edges": "CardRecordEdge", "pageInfo": "PageInfo", "totalCount": ""},
	"CardRecordEdge":       {"cursor": "", "node": "CardRecord"},
	"PageInfo":             {"hasNextPage": "", "hasPreviousPage": "", "startCursor": "", "endCursor": ""},
	"CardRecord": {
		"id": "", "template": "CardTemplate", "cardId": "", "uniqueIdentifier": "", "fields": "FieldValue",
		"field": "", "barcodeValue": "", "recipientEmail": "", "securityQuestions": "", "validFrom": "",
		"expiresAt": "", "status": "", "credentialState": "", "lockedFields": "", "photoUrl": "",
		"barcodeUrl": "", "version": "", "createdAt": "", "updatedAt": "", "archivedAt": "",
	},
	"FieldValue": {"key": "", "label": "", "value": ""},
	"CardTemplate": {
		"id": "", "name": "", "description": "", "fields": "TemplateField", "symbology": "", "cardIdFormat": "",
		"uniqueIdentifierKind": "", "defaultValidityDays": "", "version": "", "createdAt": "", "updatedAt": "",
	},
	"TemplateField": {
		"key": "", "label": "", "type": "", "required": "", "side": "", "options": "", "maxLength": "",
		"personal": "", "sensitive": "",
	},
}

// pageSelection is one object's selection, collected once for the page.
type pageSelection struct {
	typeName string
	fields   []pageField
}

// pageField is one selected field: its response key already encoded as
// JSON ("alias":), its name, its argument (field's key) and, for an object
// field, what is selected of that object.
type pageField struct {
	key  []byte
	name string
	arg  string
	sub  *pageSelection
}

// compilePage collects the selection of a records connection, or reports
// that it holds something the renderer does not write.
func compilePage(oc *graphql.OperationContext, sel ast.SelectionSet) (*pageSelection, bool) {
	return compileSelection(oc, sel, "CardRecordConnection")
}

func compileSelection(oc *graphql.OperationContext, sel ast.SelectionSet, typeName string) (*pageSelection, bool) {
	known := pageFields[typeName]
	collected := graphql.CollectFields(oc, sel, []string{typeName})
	out := &pageSelection{typeName: typeName, fields: make([]pageField, 0, len(collected))}
	for _, f := range collected {
		if f.IsDeferred() || len(f.Deferrables) > 0 {
			return nil, false
		}
		pf := pageField{key: append(appendJSONString(nil, f.Alias), ':'), name: f.Name}
		if f.Name != "__typename" {
			child, ok := known[f.Name]
			if !ok {
				return nil, false
			}
			if f.Name == "field" {
				key, ok := f.ArgumentMap(oc.Variables)["key"].(string)
				if !ok {
					return nil, false
				}
				pf.arg = key
			}
			if child != "" {
				sub, ok := compileSelection(oc, f.Selections, child)
				if !ok {
					return nil, false
				}
				pf.sub = sub
			}
		}
		out.fields = append(out.fields, pf)
	}
	return out, true
}

// pageSlot carries a records field's compiled selection from the root
// middleware to the field middleware, and the rendered page back.
type pageSlot struct {
	field *ast.Field
	sel   *pageSelection
	out   []byte
}

type pageSlotKey struct{}

// renderedElsewhere is what gqlgen is left to marshal when the renderer
// wrote the page: nothing but an empty page (and no totalCount query).
var renderedElsewhere = &model.CardRecordConnection{PageInfo: &model.PageInfo{}}

// pageRenderer holds what rendering needs beyond the request.
type pageRenderer struct {
	r *Resolver
	// answered counts records fields by who wrote them ("renderer" or
	// "executor"), so an operator can see whether consoles' queries take
	// the fast path.
	answered *prometheus.CounterVec
}

func newPageRenderer(r *Resolver, reg prometheus.Registerer) pageRenderer {
	answered := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lintel_graphql_record_pages_total",
		Help: "Query.records fields answered, by who wrote the JSON: the page renderer, or gqlgen's executor (a selection the renderer does not know, or an error).",
	}, []string{"answered_by"})
	if reg != nil {
		reg.MustRegister(answered)
	}
	return pageRenderer{r: r, answered: answered}
}

// aroundRoot is the root-field middleware: for Query.records with a
// selection the renderer knows, it runs gqlgen's field (arguments,
// directive, resolver) with a slot for aroundField to render into, and
// answers the rendered page instead of gqlgen's marshalling.
func (p pageRenderer) aroundRoot(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	rfc := graphql.GetRootFieldContext(ctx)
	oc := graphql.GetOperationContext(ctx)
	if rfc == nil || rfc.Field.Name != "records" || oc.Operation == nil || oc.Operation.Operation != ast.Query {
		return next(ctx)
	}
	sel, ok := compilePage(oc, rfc.Field.Selections)
	if !ok {
		p.answered.WithLabelValues("executor").Inc()
		return next(ctx)
	}
	slot := &pageSlot{field: rfc.Field.Field, sel: sel}
	m := next(context.WithValue(ctx, pageSlotKey{}, slot))
	if slot.out == nil {
		p.answered.WithLabelValues("executor").Inc()
		return m
	}
	p.answered.WithLabelValues("renderer").Inc()
	return graphql.WriterFunc(func(w io.Writer) {
		_, _ = w.Write(slot.out)
		// The response holds a copy now: the buffer can serve another page.
		putPageBuffer(slot.out)
		slot.out = nil
	})
}

// pageBuffers recycles page buffers: a page of 50 records is some 50 KB,
// and allocating that anew for each request kept the collector busy.
var pageBuffers sync.Pool

func getPageBuffer() []byte {
	if b, ok := pageBuffers.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 64<<10)
}

func putPageBuffer(b []byte) {
	if cap(b) <= 1<<20 {
		pageBuffers.Put(&b)
	}
}

// aroundField is the field middleware: it renders the page the records
// resolver returned, when aroundRoot asked for it and nothing failed.
func (p pageRenderer) aroundField(ctx context.Context, next graphql.Resolver) (any, error) {
	slot, _ := ctx.Value(pageSlotKey{}).(*pageSlot)
	if slot == nil || slot.out != nil {
		return next(ctx)
	}
	if fc := graphql.GetFieldContext(ctx); fc == nil || fc.Field.Field != slot.field || fc.Object != "Query" {
		return next(ctx)
	}
	res, err := next(ctx)
	conn, _ := res.(*model.CardRecordConnection)
	if err != nil || conn == nil {
		return res, err
	}
	w := pageWriter{ctx: ctx, r: p.r, buf: getPageBuffer()}
	if !w.connection(slot.sel, conn) {
		putPageBuffer(w.buf)
		return res, nil
	}
	slot.out = w.buf
	return renderedElsewhere, nil
}

// pageWriter renders one page. ok false means "leave it to gqlgen".
type pageWriter struct {
	ctx context.Context
	r   *Resolver
	buf []byte
	// templates holds each template's rendering, per selection: the
	// records of a page nearly always share one template.
	templates map[templateRendering][]byte
	// last is the template read last.
	last *templates.Template
}

type templateRendering struct {
	id  uuid.UUID
	sel *pageSelection
}

// object writes {"key":value,…} for sel, value writing each field.
func (w *pageWriter) object(sel *pageSelection, value func(f *pageField) bool) bool {
	w.buf = append(w.buf, '{')
	for i := range sel.fields {
		f := &sel.fields[i]
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = append(w.buf, f.key...)
		if f.name == "__typename" {
			w.buf = appendJSONString(w.buf, sel.typeName)
			continue
		}
		if !value(f) {
			return false
		}
	}
	w.buf = append(w.buf, '}')
	return true
}

func (w *pageWriter) connection(sel *pageSelection, c *model.CardRecordConnection) bool {
	return w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "edges":
			return writeList(w, slices.Values(c.Edges), func(e model.CardRecordEdge) bool { return w.edge(f.sub, &e) })
		case "pageInfo":
			return c.PageInfo != nil && w.pageInfo(f.sub, c.PageInfo)
		case "totalCount":
			n, err := w.r.CardRecordConnection().TotalCount(w.ctx, c)
			if err != nil {
				return false
			}
			w.buf = strconv.AppendInt(w.buf, int64(n), 10)
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) edge(sel *pageSelection, e *model.CardRecordEdge) bool {
	return w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "cursor":
			w.buf = appendJSONString(w.buf, e.Cursor)
		case "node":
			return e.Node != nil && w.record(f.sub, e.Node)
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) pageInfo(sel *pageSelection, p *model.PageInfo) bool {
	return w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "hasNextPage":
			w.buf = strconv.AppendBool(w.buf, p.HasNextPage)
		case "hasPreviousPage":
			w.buf = strconv.AppendBool(w.buf, p.HasPreviousPage)
		case "startCursor":
			w.buf = appendOptionalString(w.buf, p.StartCursor)
		case "endCursor":
			w.buf = appendOptionalString(w.buf, p.EndCursor)
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) record(sel *pageSelection, rec *records.Record) bool {
	resolve := w.r.CardRecord()
	return w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "id":
			return w.id(rec.ID)
		case "template":
			return w.template(f.sub, rec.TemplateID)
		case "cardId":
			w.buf = appendJSONString(w.buf, rec.CardID)
		case "uniqueIdentifier":
			w.buf = appendJSONString(w.buf, rec.UniqueIdentifier)
		case "fields":
			t, ok := w.loadTemplate(rec.TemplateID)
			if !ok {
				return false
			}
			writeList(w, fieldValues(t, rec), func(v model.FieldValue) bool { w.fieldValue(f.sub, &v); return true })
		case "field":
			v, err := resolve.Field(w.ctx, rec, f.arg)
			if err != nil {
				return false
			}
			w.buf = appendOptionalString(w.buf, v)
		case "barcodeValue":
			w.buf = appendJSONString(w.buf, rec.BarcodeValue)
		case "recipientEmail":
			w.buf = appendJSONString(w.buf, rec.RecipientEmail)
		case "securityQuestions":
			w.buf = appendStrings(w.buf, rec.SecurityQuestions)
		case "validFrom":
			w.buf = appendOptionalTime(w.buf, rec.ValidFrom)
		case "expiresAt":
			w.buf = appendOptionalTime(w.buf, rec.ExpiresAt)
		case "archivedAt":
			w.buf = appendOptionalTime(w.buf, rec.ArchivedAt)
		case "status":
			w.buf = appendJSONString(w.buf, string(rec.Status))
		case "credentialState":
			w.buf = appendJSONString(w.buf, string(rec.CredentialState))
		case "lockedFields":
			w.buf = appendStrings(w.buf, rec.LockedFields)
		case "photoUrl":
			u, err := resolve.PhotoURL(w.ctx, rec)
			if err != nil {
				return false
			}
			w.buf = appendOptionalString(w.buf, u)
		case "barcodeUrl":
			u, err := resolve.BarcodeURL(w.ctx, rec)
			if err != nil {
				return false
			}
			w.buf = appendJSONString(w.buf, u)
		case "version":
			w.buf = strconv.AppendInt(w.buf, int64(rec.Version), 10)
		case "createdAt":
			return w.time(rec.CreatedAt)
		case "updatedAt":
			return w.time(rec.UpdatedAt)
		default:
			return false
		}
		return true
	})
}

// writeList writes items as a JSON array, each written by item, and
// reports whether every item could be written (it stops at the first that
// could not).
func writeList[T any](w *pageWriter, items iter.Seq[T], item func(T) bool) bool {
	w.buf = append(w.buf, '[')
	first := true
	for v := range items {
		if !first {
			w.buf = append(w.buf, ',')
		}
		first = false
		if !item(v) {
			return false
		}
	}
	w.buf = append(w.buf, ']')
	return true
}

func (w *pageWriter) fieldValue(sel *pageSelection, v *model.FieldValue) {
	// Every FieldValue field is a string: nothing here can fail.
	w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "key":
			w.buf = appendJSONString(w.buf, v.Key)
		case "label":
			w.buf = appendJSONString(w.buf, v.Label)
		default:
			w.buf = appendJSONString(w.buf, v.Value)
		}
		return true
	})
}

// template writes a record's template, rendered once per page.
func (w *pageWriter) template(sel *pageSelection, id uuid.UUID) bool {
	k := templateRendering{id: id, sel: sel}
	if out, ok := w.templates[k]; ok {
		w.buf = append(w.buf, out...)
		return true
	}
	t, ok := w.loadTemplate(id)
	if !ok {
		return false
	}
	start := len(w.buf)
	if !w.templateObject(sel, t) {
		return false
	}
	if w.templates == nil {
		w.templates = map[templateRendering][]byte{}
	}
	w.templates[k] = w.buf[start:len(w.buf):len(w.buf)]
	return true
}

// loadTemplate reads a template through the operation's loader, once per
// page.
func (w *pageWriter) loadTemplate(id uuid.UUID) (*templates.Template, bool) {
	if w.last != nil && w.last.ID == id {
		return w.last, true
	}
	t, err := loadTemplate(w.ctx, w.r, id)
	if err != nil || t == nil {
		return nil, false
	}
	w.last = t
	return t, true
}

func (w *pageWriter) templateObject(sel *pageSelection, t *templates.Template) bool {
	return w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "id":
			return w.id(t.ID)
		case "name":
			w.buf = appendJSONString(w.buf, t.Name)
		case "description":
			w.buf = appendJSONString(w.buf, t.Description)
		case "fields":
			writeList(w, slices.Values(t.Fields), func(tf templates.Field) bool { w.templateField(f.sub, &tf); return true })
		case "symbology":
			w.buf = appendJSONString(w.buf, string(t.Symbology))
		case "cardIdFormat":
			w.buf = appendJSONString(w.buf, string(t.CardIDFormat))
		case "uniqueIdentifierKind":
			w.buf = appendJSONString(w.buf, string(t.UniqueIdentifierKind))
		case "defaultValidityDays":
			if t.DefaultValidityDays == nil {
				w.buf = append(w.buf, "null"...)
			} else {
				w.buf = strconv.AppendInt(w.buf, int64(*t.DefaultValidityDays), 10)
			}
		case "version":
			w.buf = strconv.AppendInt(w.buf, int64(t.Version), 10)
		case "createdAt":
			return w.time(t.CreatedAt)
		case "updatedAt":
			return w.time(t.UpdatedAt)
		default:
			return false
		}
		return true
	})
}

func (w *pageWriter) templateField(sel *pageSelection, tf *templates.Field) {
	// Every TemplateField field is a plain value: nothing here can fail.
	w.object(sel, func(f *pageField) bool {
		switch f.name {
		case "key":
			w.buf = appendJSONString(w.buf, tf.Key)
		case "label":
			w.buf = appendJSONString(w.buf, tf.Label)
		case "type":
			w.buf = appendJSONString(w.buf, string(tf.Type))
		case "required":
			w.buf = strconv.AppendBool(w.buf, tf.Required)
		case "side":
			w.buf = appendJSONString(w.buf, string(tf.Side))
		case "options":
			w.buf = appendStrings(w.buf, tf.Options)
		case "maxLength":
			w.buf = strconv.AppendInt(w.buf, int64(tf.MaxLength), 10)
		case "personal":
			w.buf = strconv.AppendBool(w.buf, tf.Personal)
		default:
			w.buf = strconv.AppendBool(w.buf, tf.Sensitive)
		}
		return true
	})
}

// id writes a non-null ID; the nil UUID is what gqlgen turns into a null
// error, so that case is left to it.
func (w *pageWriter) id(id uuid.UUID) bool {
	if id == uuid.Nil {
		return false
	}
	w.buf = append(w.buf, '"')
	w.buf = append(w.buf, id.String()...)
	w.buf = append(w.buf, '"')
	return true
}

// time writes a non-null Time; a zero time is what gqlgen turns into a
// null error, so that case is left to it.
func (w *pageWriter) time(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	w.buf = appendTime(w.buf, t)
	return true
}

// appendTime encodes t as graphql.MarshalTime does (RFC 3339 with
// nanoseconds, which needs no escaping).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendOptionalTime(b []byte, t *time.Time) []byte {
	if t == nil || t.IsZero() {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

func appendOptionalString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789ABCDEF"

// appendJSONString quotes s exactly as gqlgen's graphql.MarshalString
// does: quote, backslash and control characters escaped, every other byte
// (invalid UTF-8 included) as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		case '\n':
			b = append(b, `\n`...)
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
