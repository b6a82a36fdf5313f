// Package zstd lets a function run standalone on topics whose producers
// compress with zstd. Import it for its side effect:
//
//	import _ "github.com/microfn/microfn/fn/zstd"
//
// Standalone runs read with microfn's one-shot Kafka client, which decodes
// gzip, snappy and lz4 batches itself but leaves zstd out: the zstd
// decoder's package initialisation adds about 0.4 ms to every process
// start, and a function process starts once per message. Without this
// import, a standalone run that meets a zstd batch exits 3 with an error
// that names this package. Under the restarter a function needs no
// import: the daemon reads the topic and hands the message over a pipe.
package zstd

import _ "github.com/microfn/microfn/internal/kwire/kzstd"
