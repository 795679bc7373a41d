package graph

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/templates"
)

// loaders batch look-ups made by many resolvers of one operation into one
// query each. They are made per operation, so a cached value never outlives
// the request (or subscription event) that loaded it.
type loaders struct {
	templates *dataloadgen.Loader[uuid.UUID, *templates.Template]
}

type loadersKey struct{}

func withLoaders(ctx context.Context, r *Resolver) context.Context {
	l := &loaders{
		templates: dataloadgen.NewMappedLoader(func(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]*templates.Template, error) {
			return r.TemplateService.ByIDs(ctx, ids)
		}, dataloadgen.WithWait(time.Millisecond)),
	}
	return context.WithValue(ctx, loadersKey{}, l)
}

func loadTemplate(ctx context.Context, r *Resolver, id uuid.UUID) (*templates.Template, error) {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	if l == nil {
		return r.TemplateService.Get(ctx, id)
	}
	t, err := l.templates.Load(ctx, id)
	if errors.Is(err, dataloadgen.ErrNotFound) || (err == nil && t == nil) {
		return nil, apperr.NotFoundf("template %s not found", id)
	}
	return t, err
}

// primeTemplate hands the operation's loader a template read anyway (a
// listing reads its template to check access), so the resolvers of the
// page's template and fields need no second read.
func primeTemplate(ctx context.Context, t *templates.Template) {
	if l, _ := ctx.Value(loadersKey{}).(*loaders); l != nil && t != nil {
		l.templates.Prime(t.ID, t)
	}
}
