// Command dynago-ycsb runs YCSB workloads against a dynago cluster with
// go-ycsb (github.com/pingcap/go-ycsb) as a library: go-ycsb's core
// workload, client and measurements, and the dynago binding of package
// dynagodb. It takes go-ycsb's command line, the database being dynago:
//
//	dynago-ycsb load [dynago] -P workloads/workloada -p dynago.addrs=127.0.0.1:9101,127.0.0.1:9102
//	dynago-ycsb run  [dynago] -P workloads/workloada -p dynago.addrs=... --threads 16
//
// -P (repeatable) loads a property file, -p name=value (repeatable) sets a
// property after the files; --threads, --target and --interval set
// threadcount, target and measurement.interval, --table the table name.
// The results are go-ycsb's standard output: the properties, periodic
// summaries, then one line per operation (on standard output, or in the
// file named by measurement.output_file). Unlike go-ycsb's CLI it serves no
// pprof endpoint and has no shell.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magiconair/properties"
	ycsbclient "github.com/pingcap/go-ycsb/pkg/client"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/prop"
	_ "github.com/pingcap/go-ycsb/pkg/workload" // registers the core workload
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	"github.com/dynago/dynago/bench/ycsb/dynagodb"
)

const usage = `usage: dynago-ycsb load|run [dynago] [-P file]... [-p name=value]... [--threads n] [--target ops/s] [--interval s] [--table name]`

// errUsage reports a bad command line.
var errUsage = errors.New(usage)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dynago-ycsb:", err)
		os.Exit(2)
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// run runs one load or run phase; out receives the properties and the
// timing line, go-ycsb writes the measurements itself (standard output or
// measurement.output_file).
func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || (args[0] != "load" && args[0] != "run") {
		return errUsage
	}
	command, args := args[0], args[1:]
	if len(args) > 0 && args[0] == "dynago" {
		args = args[1:] // go-ycsb's CLI names the database here
	}
	fs := flag.NewFlagSet("dynago-ycsb "+command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var files, values listFlag
	fs.Var(&files, "P", "property file (repeatable)")
	fs.Var(&values, "p", "property name=value (repeatable)")
	threads := fs.Int("threads", 1, "worker threads (property threadcount)")
	target := fs.Int("target", 0, "operations per second, 0 = unlimited (property target)")
	interval := fs.Int("interval", 10, "seconds between progress summaries (property measurement.interval)")
	table := fs.String("table", "", "table name (property table, default "+prop.TableNameDefault+")")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	p := properties.NewProperties()
	if len(files) > 0 {
		var err error
		if p, err = properties.LoadFiles(files, properties.UTF8, false); err != nil {
			return err
		}
	}
	setProp := func(k, v string) error {
		if _, _, err := p.Set(k, v); err != nil {
			return fmt.Errorf("property %s: %w", k, err)
		}
		return nil
	}
	for _, kv := range values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("bad property %q, want name=value", kv)
		}
		if err := setProp(k, v); err != nil {
			return err
		}
	}
	flagProps := map[string]string{
		prop.DoTransactions: strconv.FormatBool(command == "run"),
		prop.Command:        command,
		prop.DB:             "dynago",
	}
	if set["threads"] {
		flagProps[prop.ThreadCount] = strconv.Itoa(*threads)
	}
	if set["target"] {
		flagProps[prop.Target] = strconv.Itoa(*target)
	}
	if set["interval"] {
		flagProps[prop.LogInterval] = strconv.Itoa(*interval)
	}
	if *table != "" {
		flagProps[prop.TableName] = *table
	} else {
		flagProps[prop.TableName] = p.GetString(prop.TableName, prop.TableNameDefault)
	}
	for k, v := range flagProps {
		if err := setProp(k, v); err != nil {
			return err
		}
	}
	if err := checkCounts(p, command == "run"); err != nil {
		return err
	}

	measurement.InitMeasure(p)
	name := p.GetString(prop.Workload, "core")
	wc := ycsb.GetWorkloadCreator(name)
	if wc == nil {
		return fmt.Errorf("unknown workload %q (go-ycsb has core)", name)
	}
	workload, err := wc.Create(p)
	if err != nil {
		return fmt.Errorf("creating workload %s: %w", name, err)
	}
	defer workload.Close()
	db, err := ycsb.GetDBCreator("dynago").Create(p)
	if err != nil {
		return err
	}
	defer db.Close()

	fmt.Fprintln(out, "***************** properties *****************")
	keys := p.Keys()
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "%q=%q\n", k, p.GetString(k, ""))
	}
	fmt.Fprintln(out, "**********************************************")

	start := time.Now()
	ycsbclient.NewClient(p, workload, ycsbclient.DbWrapper{DB: db}).Run(ctx)
	fmt.Fprintln(out, "**********************************************")
	fmt.Fprintf(out, "Run finished, takes %s\n", time.Since(start))
	measurement.Output()
	return ctx.Err()
}

// checkCounts refuses what go-ycsb's workers would exit the process for:
// fewer operations than threads. It also refuses workload E's scans,
// which the dynago binding cannot run.
func checkCounts(p *properties.Properties, transactions bool) error {
	threads := p.GetInt64(prop.ThreadCount, 1)
	if threads < 1 {
		return fmt.Errorf("threadcount %d must be at least 1", threads)
	}
	countProp := prop.OperationCount
	if !transactions {
		countProp = prop.RecordCount
		if _, ok := p.Get(prop.InsertCount); ok {
			countProp = prop.InsertCount
		}
	}
	if n := p.GetInt64(countProp, 0); n < threads {
		return fmt.Errorf("%s=%d must be at least threadcount=%d", countProp, n, threads)
	}
	if transactions && p.GetFloat64(prop.ScanProportion, prop.ScanProportionDefault) > 0 {
		return fmt.Errorf("scanproportion > 0: %w", dynagodb.ErrScanUnsupported)
	}
	return nil
}
