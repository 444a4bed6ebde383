package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The command tree. Each file of this package registers its commands from
// init, so that commands can be added without editing a central switch.
// A command still declares its flags on a standard *flag.FlagSet, one
// fs.String line per flag; newCLI hands those flags to spf13/cobra, which
// parses them (GNU style: --flag, -n for one-letter names) and gives every
// command and subcommand --help, 'dynago help CMD', shell completion of
// commands and flags, and suggestions for mistyped commands.

// command is one command of the CLI: a leaf with flags and a run function,
// or a parent of subcommands (subs).
type command struct {
	name    string
	summary string // one line, in the parent's list of commands
	use     string // the positional arguments in the synopsis, e.g. "KEY VALUE"
	long    string // the help text above the synopsis; summary when empty
	exit    string // the exit statuses, printed after the flags
	nargs   int    // how many positional arguments: exactly nargs, or oneOrMore
	args    string // what they are, for the error when the count is wrong
	// flags declares the command's flags on fs and returns the function
	// that runs the command once they are parsed, with the positional
	// arguments.
	flags func(fs *flag.FlagSet) runFunc
	subs  []command
}

type runFunc func(ctx context.Context, args []string) error

// oneOrMore is command.nargs for one or more positional arguments.
const oneOrMore = -1

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("dynago: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// cli is one command tree, built for one execution.
type cli struct {
	root *cobra.Command
	// envErr holds, per command, the DYNAGO_* values its flags refused.
	envErr map[*cobra.Command]error
}

// buildMu serialises tree builds: the env* helpers report into envErrs.
var buildMu sync.Mutex

const usageTemplate = `Usage:{{if not .HasAvailableSubCommands}}
  {{.UseLine}}{{else}}
  {{.CommandPath}} [command]{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{with .Annotations.exit}}

{{. | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// newCLI builds the command tree from the registered commands. Output goes
// to stdout and stderr as they are now (tests replace them).
func newCLI() *cli {
	buildMu.Lock()
	defer buildMu.Unlock()
	cl := &cli{envErr: map[*cobra.Command]error{}}
	root := &cobra.Command{
		Use:   "dynago",
		Short: "a Dynamo-style distributed key-value store",
		Long: `dynago: a Dynamo-style distributed key-value store

One binary: the server (dynago server), a local development cluster
(dynago dev), the client (put, get, del, status, where), operations
(admin, cert, restore, fault), and the benchmarks and checkers.`,
		Version:       versionLine(),
		Args:          cobra.ArbitraryArgs,
		RunE:          runParent,
		SilenceErrors: true, // main prints the error, then exits 1 or 2
		SilenceUsage:  true,
		Annotations: map[string]string{"exit": `Exit status: 0 on success and for help; 1 when a command fails; 2 on bad
usage (an unknown command or flag, a bad flag or DYNAGO_* value).`},
		SuggestionsMinimumDistance: 2,
		FParseErrWhitelist:         parentFlagErrors,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(versionText())
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err.Error()}
	})
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		root.AddCommand(cl.build(commands[n]))
	}
	// Create cobra's help and completion commands now (Execute would
	// later), to make them answer exit 2 on bad input like every other
	// command: cobra's own print usage and exit 0.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Run, c.RunE = nil, runHelp
		case "completion":
			c.Args, c.RunE, c.SuggestionsMinimumDistance = cobra.ArbitraryArgs, runParent, 2
			c.FParseErrWhitelist = parentFlagErrors
		}
	}
	cl.root = root
	return cl
}

// build turns c into a cobra command.
func (cl *cli) build(c command) *cobra.Command {
	use := c.name
	if c.use != "" {
		use += " " + c.use
	}
	long := c.long
	if long == "" {
		long = c.summary
	}
	cc := &cobra.Command{
		Use:                        use,
		Short:                      c.summary,
		Long:                       long,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
	}
	if c.exit != "" {
		cc.Annotations = map[string]string{"exit": strings.TrimSpace(c.exit)}
	}
	if len(c.subs) > 0 {
		for _, s := range c.subs {
			cc.AddCommand(cl.build(s))
		}
		cc.RunE = runParent
		cc.FParseErrWhitelist = parentFlagErrors
		return cc
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	envErrs = nil
	run := c.flags(fs)
	if len(envErrs) > 0 {
		cl.envErr[cc] = errors.Join(envErrs...)
	}
	envErrs = nil
	fs.VisitAll(func(f *flag.Flag) {
		pf := pflag.PFlagFromGoFlag(f)
		// Set through the flag.FlagSet, not only the value: the flag set
		// then knows which flags were given, and fs.Visit keeps working
		// (sim --seed, bench --duration and chaos --seed ask).
		v := goFlagValue{Value: pf.Value, fs: fs, name: f.Name}
		pf.Value = v
		if pf.NoOptDefVal == "true" {
			pf.Value = goBoolFlagValue{v} // shown as pflag shows its own
		}
		if pf.DefValue == "0s" {
			pf.DefValue = "0" // pflag omits a zero default only in this form
		}
		cc.Flags().AddFlag(pf)
	})
	// No positional argument of any command is a local file: completing
	// one offers nothing rather than the directory listing. (Flags such
	// as --data-dir still complete file names.)
	cc.ValidArgsFunction = cobra.NoFileCompletions
	cc.RunE = func(cmd *cobra.Command, args []string) error {
		if err := checkArgs(cmd, c, args); err != nil {
			return err
		}
		return run(cmd.Context(), args)
	}
	return cc
}

// goFlagValue sets a flag of a standard flag.FlagSet on cobra's behalf.
type goFlagValue struct {
	pflag.Value
	fs   *flag.FlagSet
	name string
}

func (v goFlagValue) Set(s string) error { return v.fs.Set(v.name, s) }

// goBoolFlagValue is a boolean goFlagValue: --flag alone means true.
type goBoolFlagValue struct{ goFlagValue }

func (goBoolFlagValue) IsBoolFlag() bool { return true }

func checkArgs(cmd *cobra.Command, c command, args []string) error {
	switch {
	case c.nargs == oneOrMore && len(args) == 0:
		return usageError{fmt.Sprintf("want at least one %s", c.args)}
	case c.nargs == 0 && len(args) > 0:
		return usageError{fmt.Sprintf("unexpected arguments %q", args)}
	case c.nargs > 0 && len(args) != c.nargs:
		return usageError{fmt.Sprintf("want %s, got %d arguments (%s)", c.args, len(args), cmd.UseLine())}
	}
	return nil
}

// parentFlagErrors lets a parent command ignore the flags it does not know,
// which belong to the subcommand the user meant: 'dynago admin plna --addr
// X' should suggest plan, not complain about --addr.
var parentFlagErrors = cobra.FParseErrWhitelist{UnknownFlags: true}

// runParent runs a command that has subcommands, when none of them was
// named: an unknown one is a usage error with suggestions, as cobra gives
// them for the root; none at all is one too, after the list of them.
func runParent(c *cobra.Command, args []string) error {
	if len(args) > 0 && args[0] == "help" {
		// 'dynago admin help [plan]', as the CLI before cobra took it.
		return helpFor(c, args[1:])
	}
	if len(args) > 0 {
		return unknownCommand(c, args[0])
	}
	fmt.Fprint(c.ErrOrStderr(), c.UsageString())
	return usageError{"a command is required"}
}

func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageError{msg}
}

// runHelp is 'dynago help [command]': cobra's, except that an unknown
// topic is a usage error with suggestions.
func runHelp(c *cobra.Command, args []string) error {
	return helpFor(c.Root(), args)
}

// helpFor prints the help of the command at path below c.
func helpFor(c *cobra.Command, path []string) error {
	target, rest, err := c.Find(path)
	if err != nil {
		return usageError{err.Error()}
	}
	if len(rest) > 0 {
		return unknownCommand(target, rest[0])
	}
	target.InitDefaultHelpFlag()
	target.InitDefaultVersionFlag()
	return target.Help()
}

// execute runs one command line (without the program name) and returns
// the command it ran, for the error message, and its error.
func execute(ctx context.Context, args []string) (*cobra.Command, error) {
	cl := newCLI()
	args = normalizeFlags(cl.root, args)
	if target, _, err := cl.root.Find(args); err == nil && cl.envErr[target] != nil {
		return target, cl.envErr[target]
	}
	cl.root.SetArgs(args) // never nil: cobra would read os.Args
	return cl.root.ExecuteContextC(ctx)
}

// normalizeFlags rewrites single-dash long flags (-addr x, -lww=false) as
// --addr x: the flag package the CLI used before cobra accepted both, pflag
// takes only the double dash, and scripts written for the old CLI should
// keep working. Only names the command being run declares are rewritten,
// so one-letter flags (-n 3), -h and values such as "-" stay as they are.
func normalizeFlags(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cur, positional := root, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		var f *pflag.Flag
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"):
			f = lookupFlag(cur, a[2:])
		case len(a) > 2 && a[0] == '-':
			name, _, _ := strings.Cut(a[1:], "=")
			if f = lookupFlag(cur, name); f != nil {
				a = "-" + a
			}
		case len(a) == 2 && a[0] == '-':
			f = cur.Flags().ShorthandLookup(a[1:])
		default:
			if !positional {
				if sub := subcommand(cur, a); sub != nil {
					cur = sub
					out = append(out, a)
					continue
				}
				positional = true
			}
		}
		out = append(out, a)
		// A flag's value is never a subcommand or a flag to rewrite.
		if f != nil && f.NoOptDefVal == "" && !strings.Contains(a, "=") && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// lookupFlag finds a long flag of c; help and version are cobra's own,
// added when the command runs.
func lookupFlag(c *cobra.Command, name string) *pflag.Flag {
	name, _, _ = strings.Cut(name, "=")
	if f := c.Flags().Lookup(name); f != nil {
		return f
	}
	if name == "help" || (name == "version" && !c.HasParent()) {
		return &pflag.Flag{Name: name, NoOptDefVal: "true"}
	}
	return nil
}

func subcommand(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}
