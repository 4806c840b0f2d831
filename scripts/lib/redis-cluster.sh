# Sourced by scripts/services: a local Redis Cluster of three primaries (no replicas) on loopback, from Debian's
# redis-server, for the tests that run against a cluster as well as the single Redis. See docs/services.md.
# Uses the helpers of scripts/services (log, die, running, port_open, pid_alive, stop_pid, need_redis, lock).

# ORCH_REDIS_CLUSTER_PORTS: the primaries' ports, separated by spaces or commas; each node's cluster bus is its
# port + 10000.
IFS=', ' read -r -a CLUSTER_PORTS <<<"${ORCH_REDIS_CLUSTER_PORTS:-7000 7001 7002}"
CLUSTER_DIR="$SERVICES_DIR/redis-cluster"
CLUSTER_NODE_TIMEOUT="${ORCH_REDIS_CLUSTER_NODE_TIMEOUT:-5000}"  # ms before the others mark a silent node failed
CLUSTER_URL="redis+cluster://$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")"
CLUSTER_URL="${CLUSTER_URL%,}"

cluster_pid() { pid_alive "$CLUSTER_DIR/$1.pid" "redis-server"; }  # cluster_pid PORT

cluster_cli() {  # cluster_cli PORT ARGS...
    local port="$1"; shift
    timeout 5 redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null
}

cluster_field() {  # cluster_field PORT FIELD: one field of CLUSTER INFO
    cluster_cli "$1" cluster info | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}'
}

# 0 if every node runs, answers and says cluster_state:ok with all 16384 slots assigned.
cluster_healthy() {
    local port
    for port in "${CLUSTER_PORTS[@]}"; do
        cluster_pid "$port" >/dev/null || return 1
        [[ "$(cluster_field "$port" cluster_state)" == ok ]] || return 1
        [[ "$(cluster_field "$port" cluster_slots_assigned)" == 16384 ]] || return 1
    done
}

start_cluster_node() {  # start_cluster_node PORT
    local port="$1" dir="$CLUSTER_DIR/$1"
    cluster_pid "$port" >/dev/null && return 0
    rm -f "$CLUSTER_DIR/$port.pid"
    local p
    for p in "$port" $((port + 10000)); do
        port_open "$p" && die 1 "port 127.0.0.1:$p is already in use by another process (set ORCH_REDIS_CLUSTER_PORTS)"
    done
    mkdir -p "$dir"
    log "starting Redis Cluster node on 127.0.0.1:$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
        --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT" --daemonize yes --pidfile "$CLUSTER_DIR/$port.pid" \
        --dir "$dir" --logfile "$dir/redis.log" --save '' --appendonly yes --appendfsync everysec 9>&- \
        || die 1 "redis-server failed to start on port $port (see $dir/redis.log)"
}

wait_cluster_nodes() {
    local deadline=$((SECONDS + START_TIMEOUT)) port
    for port in "${CLUSTER_PORTS[@]}"; do
        until [[ "$(cluster_cli "$port" ping)" == PONG ]]; do
            if ((SECONDS >= deadline)); then
                tail -n 20 "$CLUSTER_DIR/$port/redis.log" >&2 2>/dev/null || true
                die 1 "Redis Cluster node not answering PING on 127.0.0.1:$port after ${START_TIMEOUT}s"
            fi
            sleep 0.2
        done
    done
}

# New nodes (no slot assigned anywhere) are joined into one cluster; nodes that were one before find each other
# again from their nodes.conf.
create_cluster_if_new() {
    local port assigned empty=0
    for port in "${CLUSTER_PORTS[@]}"; do
        assigned="$(cluster_field "$port" cluster_slots_assigned)"
        if [[ "$assigned" == 0 ]]; then empty=$((empty + 1)); fi
    done
    if ((empty == 0)); then return 0; fi
    ((empty == ${#CLUSTER_PORTS[@]})) \
        || die 1 "only some Redis Cluster nodes know the cluster (a node's data was removed?): run 'scripts/services cluster down' then 'scripts/services cluster up --fresh'"
    log "creating the Redis Cluster: ${CLUSTER_PORTS[*]} (3 primaries, no replicas)"
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 --cluster-yes \
        >"$CLUSTER_DIR/create.log" 2>&1 \
        || { tail -n 20 "$CLUSTER_DIR/create.log" >&2; die 1 "redis-cli --cluster create failed (log: $CLUSTER_DIR/create.log)"; }
}

wait_cluster_ok() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until cluster_healthy; do
        if ((SECONDS >= deadline)); then
            cluster_cli "${CLUSTER_PORTS[0]}" cluster info >&2 || true
            die 1 "Redis Cluster not cluster_state:ok after ${START_TIMEOUT}s (logs in $CLUSTER_DIR/<port>/redis.log)"
        fi
        sleep 0.2
    done
    log "Redis Cluster ready on $CLUSTER_URL"
}

start_cluster() {  # the caller holds the lock
    cluster_healthy && return 0
    local port
    if ((FRESH)); then
        local any=0
        for port in "${CLUSTER_PORTS[@]}"; do
            if cluster_pid "$port" >/dev/null; then any=1; fi
        done
        if ((any == 0)); then
            log "starting the Redis Cluster on empty data (--fresh)"
            rm -rf "$CLUSTER_DIR"
        fi
    fi
    mkdir -p "$CLUSTER_DIR"
    for port in "${CLUSTER_PORTS[@]}"; do start_cluster_node "$port"; done
    wait_cluster_nodes
    create_cluster_if_new
    wait_cluster_ok
}

stop_cluster() {  # the caller holds the lock
    local port
    for port in "${CLUSTER_PORTS[@]}"; do
        if cluster_pid "$port" >/dev/null; then
            stop_pid "Redis Cluster node $port" "$CLUSTER_DIR/$port.pid" "redis-server"
        fi
        rm -f "$CLUSTER_DIR/$port.pid"
    done
}

cluster_status_line() {  # prints one line; 0 if healthy
    local port up=0
    for port in "${CLUSTER_PORTS[@]}"; do
        if cluster_pid "$port" >/dev/null; then up=$((up + 1)); fi
    done
    if cluster_healthy; then
        echo "redis-cluster: up (${#CLUSTER_PORTS[@]} primaries, $CLUSTER_URL)"
    elif ((up == 0)); then
        echo "redis-cluster: down (optional: 'scripts/services cluster up')"
        return 3
    else
        local state=""
        for port in "${CLUSTER_PORTS[@]}"; do
            state="$(cluster_field "$port" cluster_state || true)"
            [[ -n "$state" ]] && break
        done
        echo "redis-cluster: $up of ${#CLUSTER_PORTS[@]} nodes running, cluster_state:${state:-?}"
        return 3
    fi
}

cmd_cluster() {  # cmd_cluster up [--fresh] | down | status | env
    local sub="${1:-status}"
    [[ $# -gt 0 ]] && shift
    case "$sub" in
        up)
            case "${1:-}" in
                "") ;;
                --fresh) FRESH=1 ;;
                *) usage >&2; exit 2 ;;
            esac
            need_redis
            lock
            if cluster_healthy; then
                log "already running and healthy: Redis Cluster $CLUSTER_URL"
                return 0
            fi
            start_cluster ;;
        down) lock; stop_cluster ;;
        status) cluster_status_line ;;
        env) echo "export ORCH_REDIS_CLUSTER_URL=$CLUSTER_URL" ;;
        *) usage >&2; exit 2 ;;
    esac
}
