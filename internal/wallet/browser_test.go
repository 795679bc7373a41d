package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Helpers shared by the browser tests.

// do runs actions in the tab with a timeout.
func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into T.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := evalErr[T](ctx, expr)
	if err != nil {
		t.Fatalf("evaluate %.200s: %v", expr, err)
	}
	return v
}

func evalErr[T any](ctx context.Context, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitJS waits until the expression (which may return a promise) is true.
func waitJS(t *testing.T, ctx context.Context, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := evalErr[bool](ctx, `(async () => !!(`+expr+`))()`)
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			text, _ := evalErr[string](ctx, `document.body ? document.body.innerText : ''`)
			t.Fatalf("timed out waiting for %s (last error %v); page text:\n%s", expr, lastErr, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits until the element matching sel contains text.
func waitText(t *testing.T, ctx context.Context, sel, text string, timeout time.Duration) {
	t.Helper()
	waitJS(t, ctx, fmt.Sprintf(`(document.querySelector(%s) || {}).textContent?.includes(%s)`, js(sel), js(text)), timeout)
}

// js returns v as a JavaScript literal.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// consoleProblems collects the errors and uncaught exceptions the tab of ctx
// reports from now on (CSP violations are among them); call the returned
// func for the list so far.
func consoleProblems(ctx context.Context) func() []string {
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}
