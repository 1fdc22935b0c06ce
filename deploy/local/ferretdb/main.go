// Command ferretdb runs an embedded FerretDB v1 (SQLite backend) for local development and tests.
//
// A wrapper module is needed because `go install github.com/FerretDB/FerretDB/cmd/ferretdb`
// panics at start: build/version/version.txt is not part of the module zip. The version check
// is skipped when the main module is not FerretDB's own.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "", "absolute path of the SQLite data directory")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("-data is required")
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatal(err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f.Run(ctx)
}
