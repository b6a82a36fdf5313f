#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: broker and controller in one JVM) for
# microfn's tests, from Maven Central, with no Docker.
#
#   tests/kafka/kafka.sh start DIR [--sasl-ssl PEM] [--add-scram SPEC]... [KEY=VALUE...]
#                                                   format DIR, start Kafka on free
#                                                   loopback ports, wait until it
#                                                   answers, print its bootstrap
#                                                   address as the last line
#   tests/kafka/kafka.sh stop DIR                   stop it; nothing is left running
#   tests/kafka/kafka.sh test [GO TEST ARGS...]      the real-Kafka test pass: start a
#                                                   Kafka that creates no topic on first
#                                                   use in a temporary DIR, run
#                                                   go test -race -count=1 on the
#                                                   packages whose tests talk to a broker
#                                                   with FN_TEST_BROKERS set to it, stop
#                                                   it (also on failure or ^C), exit as
#                                                   go test did
#
# The broker is org.apache.kafka:kafka_2.13 at the version pom.xml pins; the
# first start downloads it into Maven's local repository, later starts reuse it.
# The settings are server.properties beside this script plus the addresses;
# KEY=VALUE arguments add broker settings (for example
# auto.create.topics.enable=false). DIR keeps the data (DIR/data), the log
# (DIR/kafka.log), the pid and the address (DIR/bootstrap). Starting a DIR
# whose Kafka runs prints its address again.
#
# --sasl-ssl PEM adds a second listener, SASL_SSL on another free port, whose
# TLS key and certificate chain are the PEM file PEM, offering SASL PLAIN,
# SCRAM-SHA-256 and SCRAM-SHA-512; its address goes to DIR/bootstrap-sasl-ssl.
# PLAIN's users are KEY=VALUE settings (listener.name.sasl_ssl.plain.sasl.jaas.config);
# --add-scram 'SCRAM-SHA-512=[name=alice,password=...]' creates a SCRAM user
# when DIR is formatted (kafka-storage format --add-scram). The inter-broker
# and controller listeners stay plaintext.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

die() { echo "kafka.sh: $*" >&2; exit 1; }

usage() {
	echo "usage: kafka.sh start DIR [--sasl-ssl PEM] [--add-scram SPEC]... [KEY=VALUE...] | kafka.sh stop DIR | kafka.sh test [GO TEST ARGS...]" >&2
	exit 2
}

# running DIR: DIR's Kafka process is alive (not a zombie waiting for this
# shell, its parent while starting it, to reap it).
running() {
	[ -f "$1/kafka.pid" ] || return 1
	local stat
	stat=$(cat "/proc/$(cat "$1/kafka.pid")/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat:0:1}" != Z ]
}

# port_free PORT: nothing listens on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port nothing listens on, from the range Linux does
# not hand out as ephemeral ports by default (below 32768).
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 12000))
		if port_free "$p"; then echo "$p"; return; fi
	done
	die "no free port found"
}

# cluster_id: a random Kafka cluster id (16 bytes, URL-safe base64, no
# padding) that does not start with '-', as Kafka's own never does.
cluster_id() {
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
		[ "${id:0:1}" != "-" ] && { echo "$id"; return; }
	done
}

classpath() {
	local dir=$1
	command -v java >/dev/null || die "java not found: Kafka needs a JDK 17 or newer"
	command -v mvn >/dev/null || die "mvn not found: it fetches Kafka from Maven Central"
	if ! mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:build-classpath \
		-Dmdep.outputFile="$dir/classpath" >"$dir/mvn.log" 2>&1; then
		cat "$dir/mvn.log" >&2
		die "mvn could not resolve Kafka (see above)"
	fi
	cat "$dir/classpath"
}

start() {
	local dir=$1; shift
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if running "$dir"; then
		cat "$dir/bootstrap"
		return
	fi
	local pem="" scram=()
	while [ $# -gt 0 ]; do
		case $1 in
		--sasl-ssl) [ $# -ge 2 ] || usage; pem=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
		--add-scram) [ $# -ge 2 ] || usage; scram+=(--add-scram "$2"); shift 2 ;;
		*) break ;;
		esac
	done
	[ -z "$pem" ] || [ -f "$pem" ] || die "no PEM file $pem"
	local extra
	for extra in "$@"; do
		[[ $extra == *=* ]] || die "bad setting $extra: want KEY=VALUE"
	done
	local cp
	cp=$(classpath "$dir")
	cat >"$dir/log4j2.properties" <<-EOF
		status = warn
		appender.file.type = File
		appender.file.name = file
		appender.file.fileName = $dir/kafka.log
		appender.file.layout.type = PatternLayout
		appender.file.layout.pattern = [%d] %p %m (%c)%n
		rootLogger.level = INFO
		rootLogger.appenderRef.file.ref = file
	EOF
	local try
	for try in 1 2 3; do
		local port cport sport=""
		if [ "$try" = 1 ] && [ -f "$dir/data/meta.properties" ] && [ -f "$dir/server.properties" ]; then
			# A restart: the controller's address is part of the formatted
			# quorum, so keep the ports of the first start.
			port=$(sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/server.properties")
			cport=$(sed -n 's|^controller.quorum.bootstrap.servers=127.0.0.1:||p' "$dir/server.properties")
			sport=$(sed -n 's|^advertised.listeners=.*SASL_SSL://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/server.properties")
		else
			port=$(free_port)
			cport=$(free_port)
		fi
		[ "$port" != "$cport" ] || continue
		local listeners="PLAINTEXT://127.0.0.1:$port" protocols="PLAINTEXT:PLAINTEXT"
		if [ -n "$pem" ]; then
			[ -n "$sport" ] || sport=$(free_port)
			[ "$sport" != "$port" ] && [ "$sport" != "$cport" ] || continue
			listeners+=",SASL_SSL://127.0.0.1:$sport" protocols+=",SASL_SSL:SASL_SSL"
		fi
		{
			cat "$here/server.properties"
			echo
			echo "# Added by kafka.sh"
			echo "listeners=$listeners,CONTROLLER://127.0.0.1:$cport"
			echo "advertised.listeners=$listeners"
			echo "listener.security.protocol.map=$protocols,CONTROLLER:PLAINTEXT"
			echo "inter.broker.listener.name=PLAINTEXT"
			echo "controller.quorum.bootstrap.servers=127.0.0.1:$cport"
			echo "log.dirs=$dir/data"
			if [ -n "$pem" ]; then
				echo "listener.name.sasl_ssl.ssl.keystore.type=PEM"
				echo "listener.name.sasl_ssl.ssl.keystore.location=$pem"
				echo "listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
				echo "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
				echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
				# PLAIN's users are in its JAAS line: none unless a setting below names them.
				echo "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required;"
			fi
			printf '%s\n' "$@"
		} >"$dir/server.properties"
		local java=(java -Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
			"-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$cp")
		if [ ! -f "$dir/data/meta.properties" ]; then
			"${java[@]}" kafka.tools.StorageTool format --standalone -t "$(cluster_id)" \
				-c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 ||
				{ cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
		fi
		: >"$dir/kafka.log"
		# Its own session: a signal to the shell that started it (a test
		# runner's ^C) does not reach it; kafka.sh stop does.
		setsid "${java[@]}" kafka.Kafka "$dir/server.properties" >"$dir/kafka.out" 2>&1 </dev/null &
		echo $! >"$dir/kafka.pid"
		echo "127.0.0.1:$port" >"$dir/bootstrap"
		if [ -n "$sport" ]; then echo "127.0.0.1:$sport" >"$dir/bootstrap-sasl-ssl"; fi
		local deadline=$((SECONDS + 180))
		while running "$dir"; do
			if grep -q "Kafka Server started" "$dir/kafka.log" && ! port_free "$port" &&
				{ [ -z "$sport" ] || ! port_free "$sport"; }; then
				echo "kafka.sh: Apache Kafka $(kafka_version "$cp") in $dir" >&2
				cat "$dir/bootstrap"
				return
			fi
			if [ $SECONDS -ge $deadline ]; then
				stop "$dir"
				tail -n 40 "$dir/kafka.log" >&2
				die "Kafka did not start within 180s (log: $dir/kafka.log)"
			fi
			sleep 0.2
		done
		rm -f "$dir/kafka.pid"
		if grep -q "Address already in use" "$dir/kafka.log" "$dir/kafka.out"; then
			echo "kafka.sh: port taken meanwhile; trying other ports" >&2
			continue
		fi
		tail -n 40 "$dir/kafka.log" "$dir/kafka.out" >&2
		die "Kafka exited at start (log: $dir/kafka.log)"
	done
	die "could not start Kafka on free ports after 3 tries"
}

kafka_version() {
	tr ':' '\n' <<<"$1" | sed -n 's|.*/kafka_2\.13-\(.*\)\.jar$|\1|p'
}

stop() {
	local dir=$1
	[ -d "$dir" ] || die "no directory $dir"
	if ! running "$dir"; then
		rm -f "$dir/kafka.pid"
		return
	fi
	local pid
	pid=$(cat "$dir/kafka.pid")
	kill -TERM "$pid"
	# A controlled shutdown of one node takes a few seconds.
	for _ in $(seq 300); do
		running "$dir" || { rm -f "$dir/kafka.pid"; return; }
		sleep 0.1
	done
	echo "kafka.sh: Kafka (pid $pid) ignored SIGTERM for 30s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	while running "$dir"; do sleep 0.1; done
	rm -f "$dir/kafka.pid"
}

# The packages whose tests talk to a broker (through internal/testenv, or
# FN_TEST_BROKERS directly as internal/kwire does).
test_packages=(./tests/ ./broker/ ./restarter/ ./internal/bench/ ./internal/kwire/)

run_tests() {
	local dir brokers rc=0
	dir=$(mktemp -d)
	# shellcheck disable=SC2064 # expand dir now
	trap "stop '$dir'; rm -rf '$dir'" EXIT
	trap 'exit 130' INT TERM
	# Production Kafka often creates no topics on first use; microfn must
	# create those it writes, and the tests those they read.
	brokers=$(start "$dir" auto.create.topics.enable=false | tail -n 1)
	cd "$here/../.."
	local pkgs=("${test_packages[@]}") a
	for a in "$@"; do
		[[ $a == ./* ]] && pkgs=() # packages given
	done
	echo "kafka.sh: FN_TEST_BROKERS=$brokers go test -race -count=1 -timeout 30m $* ${pkgs[*]}" >&2
	FN_TEST_BROKERS=$brokers go test -race -count=1 -timeout 30m "$@" "${pkgs[@]}" || rc=$?
	return $rc
}

[ $# -ge 1 ] || usage
case $1 in
test) shift; run_tests "$@" ;;
start) [ $# -ge 2 ] || usage; shift; start "$@" ;;
stop) [ $# -eq 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
