// Command ferretdb runs an embedded FerretDB v1 (SQLite backend) for local development and tests.
//
// A wrapper module is needed because `go install github.com/FerretDB/FerretDB/cmd/ferretdb`
// panics at start: build/version/version.txt is not part of the module zip. The version check
// is skipped when the main module is not FerretDB's own.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "", "absolute path of the SQLite data directory (sqlite backend)")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL URL (postgresql backend, preferred)")
	flag.Parse()
	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}}
	switch {
	case *postgresURL != "":
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", *postgresURL
	case *dataDir != "":
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			log.Fatal(err)
		}
		cfg.Handler, cfg.SQLiteURL = "sqlite", "file:"+*dataDir+"/"
	default:
		log.Fatal("one of -postgresql-url or -data is required")
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Handler == "sqlite" {
		go sweepIDIndexes(ctx, *dataDir)
	}
	f.Run(ctx)
}

// sweepIDIndexes works around a FerretDB v1.24 SQLite backend bug: the unique _id index is built
// on `_ferretdb_sjson->"_id"`, but _id lookups filter on `_ferretdb_sjson->'$._id'`. SQLite only
// uses an expression index for the identical expression, so every find/update by _id scanned the
// whole table (124 ms per lookup at 20,000 documents, measured). Once a second, every collection
// table without it gets an index on the expression the queries use (SEARCH instead of SCAN).
func sweepIDIndexes(ctx context.Context, dir string) {
	type handle struct {
		db    *sql.DB
		inode uint64
	}
	open := map[string]handle{}
	defer func() {
		for _, h := range open {
			h.db.Close()
		}
	}()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, file := range files {
			inode := inodeOf(file)
			h, ok := open[file]
			if ok && h.inode != inode {
				// Dropped (and maybe created again): the old handle still sees the deleted file.
				h.db.Close()
				delete(open, file)
				ok = false
			}
			if inode == 0 {
				continue // dropped between the glob and now
			}
			if !ok {
				db, err := openExisting(file)
				if err != nil {
					continue
				}
				h = handle{db, inode}
				open[file] = h
			}
			if err := indexTables(ctx, h.db); err != nil && ctx.Err() == nil {
				h.db.Close()
				delete(open, file)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// openExisting opens a FerretDB database file without ever creating one. A plain open would
// create an empty file when the database was dropped a moment before, and FerretDB then refuses
// to start ("no such table: _ferretdb_collections"), which happened once in the tests.
func openExisting(file string) (*sql.DB, error) {
	// mode=rw: never create. Same busy timeout as FerretDB's own pool, so the writers wait for each other.
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func inodeOf(file string) uint64 {
	info, err := os.Stat(file)
	if err != nil {
		return 0
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func indexTables(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT c.table_name FROM _ferretdb_collections c
		WHERE NOT EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'index' AND m.name = c.table_name || '_maillink_id')`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if rows.Scan(&t) == nil {
			tables = append(tables, t)
		}
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_maillink_id", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
