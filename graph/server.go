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
	"sync"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
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
	var wsImpl transport.WebsocketImplementation = transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{OriginPatterns: opts.AllowedOrigins}}
	if opts.Websockets != nil {
		wsImpl = trackedWebsockets{wsImpl, opts.Websockets}
	}
	srv.AddTransport(transport.Websocket{
		Implementation: wsImpl,
		InitFunc:       websocketInit(verifierFor(signer, opts.GatewayAuth)),
		InitTimeout:    10 * time.Second,
		// graphql-transport-ws ping/pong: a client that stops answering is
		// dropped after two intervals.
		PingPongInterval: 15 * time.Second,
		PayloadReadLimit: &opts.MaxBodyBytes,
	})
	srv.AddTransport(transport.GET{UseGrapQLResponseJsonByDefault: true})
	srv.AddTransport(transport.POST{UseGrapQLResponseJsonByDefault: true})
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
	return authenticate(verifierFor(signer, opts.GatewayAuth), limitBody(opts, srv))
}

// Websockets closes a shutting-down server's subscription connections
// cleanly. http.Server.Shutdown neither closes nor waits for hijacked
// connections, so without it a subscriber would only see its socket drop
// (1006) when the process exits; with it, the subscriber gets 1001 (going
// away) and reconnects, through the load balancer, to another replica.
type Websockets struct {
	mu      sync.Mutex
	closing context.Context // cancelled by CloseAll
	close   context.CancelFunc
	open    sync.WaitGroup
}

// NewWebsockets returns a tracker to pass in Options.
func NewWebsockets() *Websockets {
	ctx, cancel := context.WithCancel(context.Background())
	return &Websockets{closing: ctx, close: cancel}
}

// CloseAll closes every open subscription connection, and any accepted
// from now on, with 1001, and waits until their handlers have finished
// (the close handshake done) or ctx ends.
func (w *Websockets) CloseAll(ctx context.Context) error {
	w.mu.Lock()
	w.close()
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.open.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const closeGoingAway = int(websocket.StatusGoingAway)

// trackedWebsockets accepts connections like the wrapped implementation
// and closes them when CloseAll is called.
type trackedWebsockets struct {
	transport.WebsocketImplementation
	ws *Websockets
}

func (t trackedWebsockets) Accept(w http.ResponseWriter, r *http.Request, options transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := t.WebsocketImplementation.Accept(w, r, options)
	if err != nil {
		return nil, err
	}
	t.ws.mu.Lock()
	if t.ws.closing.Err() != nil {
		t.ws.mu.Unlock()
		_ = conn.WriteClose(closeGoingAway, "server shutting down")
		return conn, nil
	}
	// Added under the lock, before closing can be cancelled: CloseAll's
	// Wait never races an Add.
	t.ws.open.Add(1)
	t.ws.mu.Unlock()
	// Callbacks, not a goroutine per connection: a replica holds tens of
	// thousands of subscriptions. At shutdown gqlgen's reader sees the
	// close, ends the subscriptions and returns from the handler, which
	// cancels r's context; that, or the connection ending by itself, is
	// when it stops counting as open.
	stopClosing := context.AfterFunc(t.ws.closing, func() { _ = conn.WriteClose(closeGoingAway, "server shutting down") })
	context.AfterFunc(r.Context(), func() {
		stopClosing()
		t.ws.open.Done()
	})
	return conn, nil
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

// closeForbidden is the graphql-transport-ws close code for a refused
// connection_init.
const closeForbidden = 4403

func websocketInit(verify tokenVerifier) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		token := payload.Authorization()
		if token == "" {
			token = payload.GetString("token")
		}
		token = strings.TrimSpace(strings.TrimPrefix(token, "Bearer "))
		if token == "" {
			return transport.WithWebsocketCloseCode(ctx, closeForbidden), nil, errors.New("connection_init must carry an Authorization access token")
		}
		p, err := verify(ctx, token)
		if err != nil {
			return transport.WithWebsocketCloseCode(ctx, closeForbidden), nil, err
		}
		return caller.WithPrincipal(ctx, p), nil, nil
	}
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
