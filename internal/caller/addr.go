package caller

import "context"

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the caller's network address, which
// login throttling keys on.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddr returns the caller's address from ctx, or "".
func ClientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}
