package config

import (
	"testing"
	"time"
)

func TestShutdownDrain(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want time.Duration
	}{
		{"default", nil, nil, 5 * time.Second},
		{"environment", nil, map[string]string{"LINTEL_SHUTDOWN_DRAIN": "1s"}, time.Second},
		{"flag over environment", []string{"--shutdown-drain", "250ms"}, map[string]string{"LINTEL_SHUTDOWN_DRAIN": "1s"}, 250 * time.Millisecond},
		{"zero stops at once", []string{"--shutdown-drain=0"}, nil, 0},
	} {
		c, _, err := Load("test", tc.args, env(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.ShutdownDrain != tc.want {
			t.Errorf("%s: drain %v, want %v", tc.name, c.ShutdownDrain, tc.want)
		}
	}
	for _, v := range []string{"-1s", "soon"} {
		if _, _, err := Load("test", nil, env(map[string]string{"LINTEL_SHUTDOWN_DRAIN": v})); err == nil {
			t.Errorf("LINTEL_SHUTDOWN_DRAIN=%s was accepted", v)
		}
	}
}
