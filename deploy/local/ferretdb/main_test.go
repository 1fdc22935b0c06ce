package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenExistingNeverCreatesADroppedDatabase(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dropped.sqlite")
	if db, err := openExisting(file); err == nil {
		db.Close()
		t.Fatal("opening a missing database succeeded")
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("a missing database file was created: %v", err)
	}
}

func TestIndexTablesAddsTheIdExpressionIndexOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "db.sqlite")
	seed, err := openCreate(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE _ferretdb_collections (name TEXT, table_name TEXT, settings TEXT)`,
		`INSERT INTO _ferretdb_collections VALUES ('messages', 'messages_1', '{}')`,
		`CREATE TABLE messages_1 (_ferretdb_sjson TEXT)`,
	} {
		if _, err := seed.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	seed.Close()
	db, err := openExisting(file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < 2; i++ { // idempotent
		if err := indexTables(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
	var plan string
	row := db.QueryRow(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM messages_1 WHERE _ferretdb_sjson->'$._id' = ?`, `"x"`)
	var id, parent, notused int
	if err := row.Scan(&id, &parent, &notused, &plan); err != nil {
		t.Fatal(err)
	}
	if plan != "SEARCH messages_1 USING INDEX messages_1_maillink_id (<expr>=?)" {
		t.Fatalf("the _id lookup does not use the index: %s", plan)
	}
}

// openCreate opens (creating if needed) a database file, to build fixtures.
func openCreate(file string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+file)
}
