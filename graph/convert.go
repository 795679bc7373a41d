package graph

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"iter"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/barcodes"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/templates"
)

// parseID reads an ID argument. A malformed ID cannot name anything, so it
// is reported like an unknown one, naming the argument.
func parseID(arg, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, apperr.NotFoundf("%s: no object has ID %q", arg, s)
	}
	return id, nil
}

// nullIfNotFound turns NOT_FOUND into a null result for nullable lookups
// such as record(id) and template(id).
func nullIfNotFound[T any](v *T, err error) (*T, error) {
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, nil
	}
	return v, err
}

func templateInput(in model.TemplateInput) templates.Input {
	out := templates.Input{
		Name:                 in.Name,
		Description:          derefOr(in.Description.Value(), ""),
		Symbology:            in.Symbology,
		CardIDFormat:         in.CardIDFormat,
		UniqueIdentifierKind: derefOr(in.UniqueIdentifierKind.Value(), ""),
		DefaultValidityDays:  in.DefaultValidityDays.Value(),
	}
	for _, f := range in.Fields {
		out.Fields = append(out.Fields, templates.Field{
			Key: f.Key, Label: derefOr(f.Label.Value(), ""), Type: f.Type, Required: derefOr(f.Required.Value(), false),
			Side: derefOr(f.Side.Value(), ""), Options: f.Options.Value(), MaxLength: derefOr(f.MaxLength.Value(), 0),
			Personal: derefOr(f.Personal.Value(), false), Sensitive: derefOr(f.Sensitive.Value(), false),
		})
	}
	return out
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func fieldMap(vs []model.FieldValueInput) (map[string]string, error) {
	out := make(map[string]string, len(vs))
	for i, v := range vs {
		if _, dup := out[v.Key]; dup {
			return nil, apperr.Validation(apperr.FieldError{Path: fmt.Sprintf("input.fields[%d].key", i), Reason: fmt.Sprintf("%q is given twice", v.Key)})
		}
		out[v.Key] = derefOr(v.Value.Value(), "")
	}
	return out, nil
}

func questions(qs []model.SecurityQuestionInput) []records.SecurityQuestion {
	out := make([]records.SecurityQuestion, len(qs))
	for i, q := range qs {
		out[i] = records.SecurityQuestion{Question: q.Question, Answer: q.Answer}
	}
	return out
}

func recordInput(in model.RecordInput) (records.Input, error) {
	fields, err := fieldMap(in.Fields.Value())
	if err != nil {
		return records.Input{}, err
	}
	return records.Input{
		CardID: in.CardID, UniqueIdentifier: in.UniqueIdentifier, Fields: fields,
		BarcodeValue: derefOr(in.BarcodeValue.Value(), ""), RecipientEmail: derefOr(in.RecipientEmail.Value(), ""),
		SecurityQuestions: questions(in.SecurityQuestions.Value()),
		ValidFrom:         in.ValidFrom.Value(), ExpiresAt: in.ExpiresAt.Value(),
	}, nil
}

func optString(o graphql.Omittable[*string]) records.Optional[string] {
	if !o.IsSet() {
		return records.Optional[string]{}
	}
	return records.Some(derefOr(o.Value(), ""))
}

func recordPatch(in model.RecordPatch) (records.Patch, error) {
	fields, err := fieldMap(in.Fields.Value())
	if err != nil {
		return records.Patch{}, err
	}
	p := records.Patch{
		CardID: optString(in.CardID), UniqueIdentifier: optString(in.UniqueIdentifier), Fields: fields,
		BarcodeValue: optString(in.BarcodeValue), RecipientEmail: optString(in.RecipientEmail),
	}
	if in.SecurityQuestions.IsSet() {
		p.SecurityQuestions = records.Some(questions(in.SecurityQuestions.Value()))
	}
	if in.ValidFrom.IsSet() {
		p.ValidFrom = records.Some(in.ValidFrom.Value())
	}
	if in.ExpiresAt.IsSet() {
		p.ExpiresAt = records.Some(in.ExpiresAt.Value())
	}
	return p, nil
}

func recordFilter(f *model.RecordFilter) records.Filter {
	if f == nil {
		return records.Filter{}
	}
	return records.Filter{
		Status: f.Status.Value(), CredentialState: f.CredentialState.Value(), Search: derefOr(f.Search.Value(), ""),
		ValidAt: f.ValidAt.Value(), ExpiresBefore: f.ExpiresBefore.Value(), UpdatedSince: f.UpdatedSince.Value(),
	}
}

// readPhoto reads an uploaded photo, refusing one over the limit without
// reading it all.
func (r *Resolver) readPhoto(_ context.Context, up *graphql.Upload) (*records.Photo, error) {
	if up == nil {
		return nil, nil
	}
	limit := r.RecordService.PhotoMaxBytes()
	data, err := io.ReadAll(io.LimitReader(up.File, limit+1))
	if err != nil {
		return nil, apperr.New(apperr.Invalid, "photo: upload could not be read: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, apperr.Validation(apperr.FieldError{Path: "photo", Reason: fmt.Sprintf("is larger than %d bytes", limit)})
	}
	return &records.Photo{Data: data}, nil
}

// barcodeDataURL renders a barcode value as a data:image/png URL; size 0
// is the default width, others must be 64–2048 pixels.
func barcodeDataURL(sym templates.Symbology, value string, size int) (string, error) {
	if size != 0 && (size < 64 || size > 2048) {
		return "", apperr.Validation(apperr.FieldError{Path: "size", Reason: "must be from 64 to 2048 pixels"})
	}
	png, err := barcodes.Render(string(sym), value, size)
	if err != nil {
		return "", apperr.New(apperr.FailedPrecondition, "the barcode value cannot be rendered in %s: %v", sym, err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), nil
}

// fieldValues yields a record's field values in template order, leaving
// out fields without a value (for the fields resolver and the page
// renderer, which must agree).
func fieldValues(t *templates.Template, rec *records.Record) iter.Seq[model.FieldValue] {
	return func(yield func(model.FieldValue) bool) {
		for _, f := range t.Fields {
			if v, ok := rec.Fields[f.Key]; ok {
				if !yield(model.FieldValue{Key: f.Key, Label: f.Label, Value: v}) {
					return
				}
			}
		}
	}
}
