package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dynago/dynago/storage/pebbledb"
)

func init() {
	register(command{name: "restore", summary: "bring a stopped node's data dir back from a backup", long: restoreUsage, exit: exitStatus, flags: runRestore})
}

const restoreUsage = `Copies a backup written by 'dynago admin backup' into the data directory D
of a stopped node (the --data-dir it runs with). D must be empty unless
--force is given, which deletes what it holds. The restored node starts
with a new epoch, so it never reuses the version stamps it handed out
after the backup; anti-entropy then brings it what was written since.`

func runRestore(flags *flag.FlagSet) runFunc {
	from := flags.String("from", "", "the backup directory")
	dataDir := flags.String("data-dir", "", "the node's data directory (its --data-dir)")
	force := flags.Bool("force", false, "delete what the data directory holds first")
	return func(context.Context, []string) error {
		if *from == "" || *dataDir == "" {
			return fmt.Errorf("%w: restore: --from and --data-dir are required\n%s", errUsage, restoreUsage)
		}
		// The node keeps its store in <data-dir>/db (server.Start); nothing
		// else in the data dir is needed to start.
		dst := filepath.Join(*dataDir, "db")
		if ents, err := os.ReadDir(*dataDir); err == nil && len(ents) > 0 && !*force {
			return fmt.Errorf("restore: %s is not empty (%d entries); stop the node and give --force to replace its store", *dataDir, len(ents))
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("restore: %w", err)
		}
		// --force replaces the store only: other files an operator keeps in
		// the data dir are not dynago's to delete.
		if err := pebbledb.RestoreCheckpoint(*from, dst, *force); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		n, _ := pebbledb.DirSize(dst)
		fmt.Fprintf(stdout, "restored %s into %s (%d bytes); the node will start with a new epoch\n", *from, *dataDir, n)
		return nil
	}
}
