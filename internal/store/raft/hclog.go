package raft

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newHCLogger bridges raft's hclog output to log at Warn and above (raft is
// chatty at Info). A nil log discards it. While quiet returns true (the
// node is closing: raft reports the connections it loses as errors) the
// records go out at Debug.
func newHCLogger(log *slog.Logger, name string, quiet func() bool) hclog.Logger {
	if log == nil {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Warn,
		JSONFormat: true,
		Output:     slogWriter{log, quiet},
	})
}

// slogWriter turns hclog's JSON lines into slog records.
type slogWriter struct {
	log   *slog.Logger
	quiet func() bool
}

func (w slogWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSpace(string(p)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			w.log.Warn(line)
			continue
		}
		level := slog.LevelWarn
		switch m["@level"] {
		case "error":
			level = slog.LevelError
		case "info":
			level = slog.LevelInfo
		case "debug", "trace":
			level = slog.LevelDebug
		}
		if w.quiet != nil && w.quiet() {
			level = slog.LevelDebug
		}
		msg, _ := m["@message"].(string)
		attrs := []slog.Attr{}
		if mod, ok := m["@module"].(string); ok {
			attrs = append(attrs, slog.String("module", mod))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			if !strings.HasPrefix(k, "@") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			attrs = append(attrs, slog.Any(k, m[k]))
		}
		w.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
	return len(p), nil
}
