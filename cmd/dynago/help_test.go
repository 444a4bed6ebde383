package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// dynago runs one command line as main does and returns its stdout, its
// stderr and its exit status.
func dynago(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	oldIn, oldOut, oldErr := stdin, stdout, stderr
	stdin, stdout, stderr = strings.NewReader(""), &out, &errOut
	defer func() { stdin, stdout, stderr = oldIn, oldOut, oldErr }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code := runMain(ctx, args)
	return out.String(), errOut.String(), code
}

// commandPaths walks the command tree as a user sees it (hidden commands
// such as cobra's __complete left out) and returns every command's path
// below the root, parents before their subcommands.
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, s := range c.Commands() {
			if s.Hidden {
				continue
			}
			p := append(slices.Clone(path), s.Name())
			paths = append(paths, p)
			walk(s, p)
		}
	}
	walk(newCLI().root, nil)
	return paths
}

// localFlags lists the flags a command declares itself, as --name.
func localFlags(t *testing.T, path []string) []string {
	t.Helper()
	c, _, err := newCLI().root.Find(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden {
			names = append(names, "--"+f.Name)
		}
	})
	return names
}

// TestEveryCommandHelpExitsZero asks every command and subcommand of the
// tree for help in each way a user can, and checks that each answers on
// stdout with exit status 0, lists the command's own flags, and that the
// ways agree. New commands are covered without editing this test.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	paths := commandPaths(t)
	var seen []string
	for _, p := range paths {
		seen = append(seen, strings.Join(p, " "))
	}
	for _, want := range []string{"server", "dev", "put", "get", "status", "admin plan", "admin leave", "admin backup",
		"fault set", "fault heal", "cert create-node", "sim run", "restore", "version", "completion bash", "help"} {
		if !slices.Contains(seen, want) {
			t.Errorf("the tree has no %q (it has %q)", want, seen)
		}
	}
	paths = append(paths, nil) // the root
	for _, p := range paths {
		name := strings.TrimSpace("dynago " + strings.Join(p, " "))
		flags := localFlags(t, p)
		var first string
		for _, args := range [][]string{
			append(slices.Clone(p), "--help"),
			append(slices.Clone(p), "-h"),
			append(slices.Clone(p), "-help"), // as the flag package accepted it
			append([]string{"help"}, p...),
		} {
			out, errOut, code := dynago(t, args...)
			if code != 0 || errOut != "" {
				t.Errorf("dynago %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
				continue
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("dynago %s printed no usage:\n%s", strings.Join(args, " "), out)
			}
			for _, f := range flags {
				if !strings.Contains(out, f) {
					t.Errorf("dynago %s does not list %s:\n%s", strings.Join(args, " "), f, out)
				}
			}
			if first == "" {
				first = out
			} else if out != first {
				t.Errorf("%s: --help and %s answer differently", name, strings.Join(args, " "))
			}
		}
	}
	// Spot checks that the flags listed are the command's own.
	for path, want := range map[string][]string{
		"server":         {"--id", "--data-dir", "--certs-dir", "--insecure", "--n int", "(env DYNAGO_N)"},
		"fault set":      {"--addr", "--all", "--delay DST=SPEC", "--loss DST=P", "--cut"},
		"admin backup":   {"--addr", "--dir"},
		"sim run":        {"--seeds", "--seed", "--lww", "Exit status:"},
		"get":            {"--r int", "--timeout duration", "--json", "dynago get KEY [flags]"},
		"cert create-ca": {"--certs-dir", "--overwrite", "--lifetime"},
	} {
		out, _, _ := dynago(t, append(strings.Fields(path), "--help")...)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("dynago %s --help lacks %q:\n%s", path, w, out)
			}
		}
	}
	// 'CMD help [SUB]', which the CLI before cobra took for its parents.
	for _, p := range [][]string{{"admin"}, {"fault"}, {"cert", "create-ca"}, {"sim", "run"}} {
		want, _, _ := dynago(t, append(slices.Clone(p), "--help")...)
		args := append([]string{p[0], "help"}, p[1:]...)
		if out, errOut, code := dynago(t, args...); code != 0 || out != want {
			t.Errorf("dynago %s: exit %d, stderr %q, output\n%s\nwant\n%s", strings.Join(args, " "), code, errOut, out, want)
		}
	}
	if out, _, _ := dynago(t, "fault", "show", "--help"); strings.Contains(out, "--delay") {
		t.Errorf("fault show lists set's --delay:\n%s", out)
	}
}

func TestRootHelpListsEveryCommand(t *testing.T) {
	out, _, code := dynago(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for name := range commands {
		if !strings.Contains(out, "\n  "+name+" ") {
			t.Errorf("dynago --help does not list %s:\n%s", name, out)
		}
	}
	for _, w := range []string{"completion", "help", "Exit status: 0"} {
		if !strings.Contains(out, w) {
			t.Errorf("dynago --help lacks %q", w)
		}
	}
	// No command at all is bad usage, as it always was; the list goes to
	// stderr.
	out, errOut, code := dynago(t)
	if code != 2 || out != "" || !strings.Contains(errOut, "Available Commands:") {
		t.Errorf("dynago alone: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestTypoSuggestion: a mistyped command exits 2 and names the command
// meant, at the top level, below it, and for help.
func TestTypoSuggestion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, "dynago: unknown command \"stauts\" for \"dynago\"\n\nDid you mean this?\n\tstatus\nRun 'dynago --help' for usage.\n"},
		{[]string{"admin", "plna", "--addr", "127.0.0.1:1"}, "Did you mean this?\n\tplan\n"},
		{[]string{"fault", "haal"}, "Did you mean this?\n\theal\n"},
		{[]string{"sim", "rnu"}, "Did you mean this?\n\trun\n"},
		{[]string{"completion", "bsh"}, "Did you mean this?\n\tbash\n"},
		{[]string{"help", "stauts"}, "Did you mean this?\n\tstatus\n"},
		{[]string{"help", "admin", "comit"}, "Did you mean this?\n\tcommit\n"},
	} {
		out, errOut, code := dynago(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("dynago %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
}

// TestBadUsageExits2: unknown flags, bad flag values, wrong argument
// counts and a missing subcommand are usage errors; no command runs.
func TestBadUsageExits2(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--bogus"},
		{"status", "-bogus"},
		{"fault", "heal", "--delay", "n1=1ms"}, // set's flag, not heal's
		{"server", "--n", "abc"},
		{"server", "--lww=maybe"},
		{"server", "extra"},
		{"sim", "run", "--seeds", "x"},
		{"admin"},
		{"admin", "leave"},
		{"cert"},
		{"completion"},
		{"put", "k"},
		{"--bogus"},
	} {
		_, errOut, code := dynago(t, args...)
		if code != 2 || !strings.Contains(errOut, "Run 'dynago") {
			t.Errorf("dynago %s: exit %d, stderr %q; want exit 2 and a pointer to --help", strings.Join(args, " "), code, errOut)
		}
	}
	// A runtime failure is 1: nothing listens on port 1.
	if _, errOut, code := dynago(t, "status", "--addr", "127.0.0.1:1"); code != 1 || !strings.HasPrefix(errOut, "dynago status: ") {
		t.Errorf("status against nothing: exit %d, stderr %q; want 1", code, errOut)
	}
}

// TestSingleDashFlagsStillWork: the flag package the CLI used before
// cobra took -addr as well as --addr; scripts that relied on it keep
// working.
func TestSingleDashFlagsStillWork(t *testing.T) {
	cl := newCLI()
	for _, tc := range []struct{ in, want []string }{
		{[]string{"put", "-addr", "h:1", "-w", "2", "k", "-"}, []string{"put", "--addr", "h:1", "-w", "2", "k", "-"}},
		{[]string{"get", "-timeout=5s", "-json", "k"}, []string{"get", "--timeout=5s", "--json", "k"}},
		// A flag's value is left alone, even one that looks like a flag.
		{[]string{"get", "--addr", "-json", "k"}, []string{"get", "--addr", "-json", "k"}},
		{[]string{"fault", "partition", "n1", "-from", "n2"}, []string{"fault", "partition", "n1", "--from", "n2"}},
		{[]string{"-version"}, []string{"--version"}},
		{[]string{"status", "--", "-addr"}, []string{"status", "--", "-addr"}},
		{[]string{"put", "-nope", "k"}, []string{"put", "-nope", "k"}}, // unknown: pflag reports it
	} {
		if got := normalizeFlags(cl.root, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("normalizeFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// End to end: -addr reaches the client (whose error names it).
	_, errOut, code := dynago(t, "status", "-addr", "ftp://x")
	if code != 2 || !strings.Contains(errOut, "--addr") {
		t.Errorf("status -addr ftp://x: exit %d, stderr %q", code, errOut)
	}
}

func TestVersionFlagAndCommandAgree(t *testing.T) {
	v, _, code := dynago(t, "version")
	if code != 0 || !strings.HasPrefix(v, "dynago ") || !strings.Contains(v, "\ncommit: ") || !strings.Contains(v, "\ngo: go") {
		t.Fatalf("version: exit %d, %q", code, v)
	}
	if f, _, code := dynago(t, "--version"); code != 0 || f != v {
		t.Errorf("--version: exit %d, %q; version printed %q", code, f, v)
	}
	if _, _, code := dynago(t, "version", "extra"); code != 2 {
		t.Errorf("version extra: exit %d, want 2", code)
	}
}

// TestCompletion: cobra's scripts for each shell, and the completions
// they ask the binary for: subcommand names and flag names.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errOut, code := dynago(t, "completion", shell)
		if code != 0 || len(out) < 500 || !strings.Contains(out, "dynago") || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), errOut)
		}
	}
	// The scripts call 'dynago __complete WORDS... PARTIAL'; what it
	// answers is what the shell offers.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"server", "status", "admin", "fault", "cert", "version", "completion", "help"}},
		{[]string{"sta"}, []string{"status"}},
		{[]string{"admin", ""}, []string{"plan", "commit", "leave", "abort", "backup"}},
		{[]string{"cert", "create-"}, []string{"create-ca", "create-node", "create-client"}},
		{[]string{"put", "--"}, []string{"--addr", "--context", "--w", "--timeout"}},
		{[]string{"server", "--data"}, []string{"--data-dir"}},
		{[]string{"fault", "set", "--"}, []string{"--delay", "--loss", "--cut", "--all"}},
		{[]string{"help", "ad"}, []string{"admin"}},
		{[]string{"where", ""}, []string{":4"}}, // ShellCompDirectiveNoFileComp: a key, not a file
	} {
		out, _, code := dynago(t, append([]string{"__complete"}, tc.args...)...)
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if l != "" && !strings.HasPrefix(l, "Completion ended") {
				name, _, _ := strings.Cut(l, "\t")
				got = append(got, name)
			}
		}
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("__complete %q: exit %d, offers %q, not %q", tc.args, code, got, w)
			}
		}
		if tc.args[len(tc.args)-1] == "sta" && slices.Contains(got, "server") {
			t.Errorf("__complete sta offers server: %q", got)
		}
	}
}
