package graph

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"github.com/jackc/pgx/v5/pgconn"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/lintel/lintel/graph/model"
	"github.com/lintel/lintel/internal/apperr"
	"github.com/lintel/lintel/internal/auth"
	"github.com/lintel/lintel/internal/caller"
	"github.com/lintel/lintel/internal/gateways"
	"github.com/lintel/lintel/internal/records"
	"github.com/lintel/lintel/internal/requestid"
)

// Options are the public-server limits of the GraphQL endpoint.
type Options struct {
	Introspection  bool
	MaxBodyBytes   int64
	MaxUploadBytes int64
	MaxDepth       int
	MaxComplexity  int
	// AllowedOrigins are host patterns (path.Match syntax, e.g.
	// "console.example.com" or "*.example.com") whose pages may open
	// WebSocket subscriptions; same-origin pages always may.
	AllowedOrigins []string
	Logger         *slog.Logger
	// GatewayAuth authenticates gateway tokens (those starting with
	// gateways.TokenPrefix); nil accepts none.
	GatewayAuth func(ctx context.Context, token string) (*caller.Principal, error)
	// Websockets, when set, tracks the subscription connections so that
	// a server shutting down can close them (see Websockets.CloseAll).
	Websockets *Websockets
	// PlainRecordPages turns the records page renderer off (see
	// records_page.go), leaving every page to gqlgen's executor.
	PlainRecordPages bool
	// Metrics, when set, receives the GraphQL endpoint's own metrics.
	Metrics prometheus.Registerer
}

// tokenVerifier turns a bearer token into the caller: an operator's
// access token, or a gateway's token.
type tokenVerifier func(ctx context.Context, token string) (*caller.Principal, error)

func verifierFor(signer *auth.Signer, gatewayAuth func(context.Context, string) (*caller.Principal, error)) tokenVerifier {
	return func(ctx context.Context, token string) (*caller.Principal, error) {
		if strings.HasPrefix(token, gateways.TokenPrefix) {
			if gatewayAuth == nil {
				return nil, apperr.New(apperr.Unauthenticated, "gateway tokens are not accepted here")
			}
			return gatewayAuth(ctx, token)
		}
		return signer.Verify(token)
	}
}

// NewHandler returns the /graphql handler: GraphQL over HTTP (GET and POST,
// application/graphql-response+json), multipart uploads, and subscriptions
// over graphql-transport-ws.
func NewHandler(r *Resolver, signer *auth.Signer, opts Options) http.Handler {
	cfg := Config{Resolvers: r, Directives: DirectiveRoot{HasRole: hasRole}}
	// A list costs its page size times what each element costs, so a
	// query asking for 500 records with deep selections is priced as such.
	cfg.Complexity.Query.Records = func(child int, _ string, _ *model.RecordFilter, _ *model.RecordOrder, first *int, _ *string, last *int, _ *string) int {
		n := records.DefaultPageSize
		if first != nil {
			n = *first
		} else if last != nil {
			n = *last
		}
		return 1 + max(n, 1)*child
	}
	exportComplexity(&cfg)
	srv := handler.New(NewExecutableSchema(cfg))
	conns := opts.Websockets
	if conns == nil {
		conns = NewWebsockets()
	}
	srv.AddTransport(&wsTransport{
		accept:      websocket.AcceptOptions{Subprotocols: []string{wsSubprotocol}, OriginPatterns: opts.AllowedOrigins},
		init:        websocketInit(verifierFor(signer, opts.GatewayAuth)),
		initTimeout: wsDefaultInitTimeout,
		// A client that answers no ping (nor says anything else) for two
		// intervals is dropped.
		pingInterval: wsDefaultPingInterval,
		readLimit:    opts.MaxBodyBytes,
		conns:        conns,
	})
	srv.AddTransport(transport.GET{UseGrapQLResponseJsonByDefault: true})
	srv.AddTransport(postTransport{plain: transport.POST{UseGrapQLResponseJsonByDefault: true}})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: opts.MaxUploadBytes, MaxMemory: 8 << 20})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	if opts.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(introspectionOff{})
	}
	srv.Use(extension.FixedComplexityLimit(opts.MaxComplexity))
	srv.Use(depthLimit{max: opts.MaxDepth})
	srv.SetErrorPresenter(errorPresenter(opts.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		opts.Logger.ErrorContext(ctx, "panic in resolver", "panic", v, "request_id", requestid.From(ctx))
		return apperr.New(apperr.Internal, "internal error")
	})
	srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(withLoaders(ctx, r))
	})
	if !opts.PlainRecordPages {
		pages := newPageRenderer(r, opts.Metrics)
		srv.AroundRootFields(pages.aroundRoot)
		srv.AroundFields(pages.aroundField)
	}
	return authenticate(verifierFor(signer, opts.GatewayAuth), limitBody(opts, srv))
}

// limitBody caps request bodies (gqlgen reads them without a limit) and
// refuses multipart requests that are not preflighted: a browser sends a
// multipart form cross-site without asking, so without this an upload
// mutation would be open to CSRF.
func limitBody(opts Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := opts.MaxBodyBytes
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			if r.Header.Get("GraphQL-Require-Preflight") == "" && r.Header.Get("Apollo-Require-Preflight") == "" {
				writeError(w, http.StatusBadRequest, apperr.New(apperr.Invalid,
					"multipart requests must carry a GraphQL-Require-Preflight header (CSRF protection)"))
				return
			}
			limit = opts.MaxUploadBytes + 1<<20
		}
		if r.ContentLength > limit {
			writeError(w, http.StatusRequestEntityTooLarge, apperr.New(apperr.TooLarge, "request body is %d bytes, at most %d allowed", r.ContentLength, limit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if r.ContentLength < 0 && r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
			// gqlgen answers a failed body read with 200; read a body of
			// unknown length here so an oversized one gets a proper 413.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				writeError(w, http.StatusRequestEntityTooLarge, apperr.New(apperr.TooLarge, "request body is over %d bytes", limit))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate puts the caller named by a Bearer token into the request
// context; a request without a token stays anonymous, one with a bad token
// is refused.
func authenticate(verify tokenVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		if h == "" {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			writeError(w, http.StatusUnauthorized, apperr.New(apperr.Unauthenticated, "Authorization must be \"Bearer <access token>\""))
			return
		}
		p, err := verify(r.Context(), strings.TrimSpace(token))
		if err != nil {
			status := http.StatusUnauthorized
			if apperr.CodeOf(err) == apperr.Internal {
				status = http.StatusServiceUnavailable
			}
			writeError(w, status, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(caller.WithPrincipal(r.Context(), p)))
	})
}

// Authenticator returns the Bearer-token middleware for other endpoints
// (such as photo downloads) that need the same caller.
func Authenticator(signer *auth.Signer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return authenticate(verifierFor(signer, nil), next) }
}

// hasRole implements the @hasRole directive.
func hasRole(ctx context.Context, _ any, next graphql.Resolver, role caller.Role) (any, error) {
	if _, err := caller.Require(ctx, role); err != nil {
		return nil, err
	}
	return next(ctx)
}

// writeError answers a request refused before GraphQL execution in the
// GraphQL response shape.
func writeError(w http.ResponseWriter, status int, err error) {
	e, ok := apperr.As(err)
	if !ok {
		e = apperr.New(apperr.Internal, "internal error")
	}
	w.Header().Set("Content-Type", "application/graphql-response+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": e.Message, "extensions": map[string]any{"code": e.Code}}},
	})
}

// errorPresenter turns domain errors into GraphQL errors with
// extensions.code and hides everything else.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		if e, ok := apperr.As(err); ok {
			gqlErr.Message = e.Message
			if gqlErr.Extensions == nil {
				gqlErr.Extensions = map[string]any{}
			}
			gqlErr.Extensions["code"] = string(e.Code)
			if len(e.Fields) > 0 {
				gqlErr.Extensions["fields"] = e.Fields
			}
			for k, v := range e.Extra {
				gqlErr.Extensions[k] = v
			}
			return gqlErr
		}
		var existing *gqlerror.Error
		if errors.As(err, &existing) && existing.Extensions != nil && existing.Extensions["code"] != nil {
			// gqlgen's own parse and validation errors already carry a code.
			return gqlErr
		}
		if errors.As(err, &existing) && existing.Err == nil && existing.Rule != "" {
			return gqlErr
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			gqlErr.Message = "request cancelled"
			gqlErr.Extensions = map[string]any{"code": string(apperr.Unavailable)}
			return gqlErr
		}
		if databaseUnreachable(err) {
			gqlErr.Message = "the database is unreachable; try again shortly"
			gqlErr.Extensions = map[string]any{"code": string(apperr.Unavailable), "retryAfterSeconds": 2}
			return gqlErr
		}
		log.ErrorContext(ctx, "internal error", "err", err, "path", gqlErr.Path.String(), "request_id", requestid.From(ctx))
		gqlErr.Message = "internal error"
		gqlErr.Extensions = map[string]any{"code": string(apperr.Internal), "requestId": requestid.From(ctx)}
		return gqlErr
	}
}

// databaseUnreachable reports whether err comes from not reaching
// PostgreSQL at all (down, restarting, network), as opposed to a failing
// statement: such requests fail fast as UNAVAILABLE, and the pool
// reconnects by itself once the database is back.
func databaseUnreachable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server is shutting down or starting up.
		switch pgErr.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || pgconn.SafeToRetry(err)
}
