package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Flag annotations that expandArgs understands: az (argparse) flags that
// pflag cannot express by itself.
const (
	// annNargs marks a flag that takes one or more space-separated values,
	// like argparse's nargs='+': `--administrators a b c`. Repeating the
	// flag adds more values.
	annNargs = "tresor.nargs"
	// annOptBool marks a boolean flag whose value may follow after a space,
	// like az's three-state flags: `--enable-purge-protection true`.
	annOptBool = "tresor.optbool"
)

// markNargs marks flags of fs as taking one or more space-separated values.
func markNargs(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, annNargs, []string{"true"}); err != nil {
			panic(err)
		}
	}
}

// optBoolVar defines a boolean flag that also takes "true" or "false"
// after a space (see annOptBool).
func optBoolVar(fs *pflag.FlagSet, p *bool, name, usage string) {
	fs.BoolVar(p, name, false, usage+" (true or false; alone means true)")
	if err := fs.SetAnnotation(name, annOptBool, []string{"true"}); err != nil {
		panic(err)
	}
}

// expandArgs rewrites args so that pflag can parse what argparse would:
// `--flag v1 v2` for nargs flags becomes `--flag=v1 --flag=v2`, and
// `--boolflag false` for optional-value booleans becomes `--boolflag=false`.
// Only flags of the command that args name are considered.
func expandArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return args
	}
	cmd.InheritedFlags() // merges the parents' persistent flags into cmd.Flags()
	fs := cmd.Flags()
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		f, inline, hasInline := lookupFlag(fs, a)
		if f == nil {
			out = append(out, a)
			continue
		}
		switch {
		case f.Annotations[annNargs] != nil:
			var vals []string
			if hasInline {
				vals = append(vals, inline)
			}
			for i+1 < len(args) && !looksLikeFlag(args[i+1]) {
				i++
				vals = append(vals, args[i])
			}
			if len(vals) == 0 {
				out = append(out, a) // pflag reports the missing value
				continue
			}
			for _, v := range vals {
				out = append(out, "--"+f.Name+"="+v)
			}
		case f.Annotations[annOptBool] != nil && !hasInline:
			if i+1 < len(args) && isBoolWord(args[i+1]) {
				i++
				out = append(out, "--"+f.Name+"="+strings.ToLower(args[i]))
			} else {
				out = append(out, a)
			}
		default:
			out = append(out, a)
			if !hasInline && f.NoOptDefVal == "" && i+1 < len(args) {
				i++
				out = append(out, args[i]) // the flag's value, whatever it looks like
			}
		}
	}
	return out
}

// lookupFlag finds the flag an argument names: --name, --name=value, -x,
// -x=value or -xvalue.
func lookupFlag(fs *pflag.FlagSet, a string) (f *pflag.Flag, inline string, hasInline bool) {
	switch {
	case strings.HasPrefix(a, "--") && len(a) > 2:
		name := a[2:]
		if k := strings.IndexByte(name, '='); k >= 0 {
			name, inline, hasInline = name[:k], name[k+1:], true
		}
		return fs.Lookup(name), inline, hasInline
	case strings.HasPrefix(a, "-") && len(a) > 1:
		f = fs.ShorthandLookup(a[1:2])
		if len(a) > 2 {
			inline, hasInline = strings.TrimPrefix(a[2:], "="), true
		}
		return f, inline, hasInline
	}
	return nil, "", false
}

func looksLikeFlag(s string) bool { return len(s) > 1 && s[0] == '-' }

func isBoolWord(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false":
		return true
	}
	return false
}

// parseTags turns az-style tag arguments into a map: "k=v" sets k to v,
// "k" sets k to "", and "" alone yields an empty map (which clears tags in
// an update).
func parseTags(args []string) (map[string]string, error) {
	if args == nil {
		return nil, nil
	}
	tags := map[string]string{}
	for _, a := range args {
		if a == "" {
			continue
		}
		k, v, _ := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid tag %q: want key=value", a)
		}
		tags[k] = v
	}
	return tags, nil
}
