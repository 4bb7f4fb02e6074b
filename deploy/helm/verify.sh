#!/usr/bin/env bash
# Reproduces meshflow's demonstrations on a real cluster, with numbers.
#
#   1. broker failover: delete the broker leading meshflow.events partition 0
#      while traffic flows; no message may be lost.
#   2. rolling restart: `kubectl rollout restart statefulset/kafka` while
#      traffic flows, as an upgrade does; no partition may fall below
#      min.insync.replicas (what makes brokers answer acks=all producers with
#      NOT_ENOUGH_REPLICAS), the producer may see no such error and no failed
#      send, nothing may be lost, and no partition may stay under-replicated.
#   3. consumer failover: delete a consumer pod; the group rebalances onto the
#      survivors and catches up, and no message may be lost.
#   4. isolation: from a pod outside the mesh, and from an in-mesh pod with a
#      service account the policies do not name, a Kafka request to a broker
#      gets no answer: ztunnel resets the connection within a bounded time.
#      A pod with the producer's service account, same image and same
#      request, is answered (the control that shows the request works).
#
# Loss and traffic are read from the exporter (meshflow_messages_lost_total,
# meshflow_messages_total), send failures from the producer
# (meshflow_producer_messages_total{outcome="failed"}), through
# `kubectl port-forward`, which enters the pod directly and needs no mesh
# identity. The exporter counts a loss only after its grace window (log
# stage) or SLA (processed stage), so each disruption is followed by a settle
# period of grace + SLA before the counters are compared.
#
# Usage: deploy/helm/verify.sh [--namespace NS] [--only broker|rolling|consumer|isolation]
#                              [--hard] [--settle SECONDS] [--bound SECONDS]
#                              [--sample SECONDS]
#   --hard     delete pods with --grace-period=0 --force (a crash, not a
#              controlled shutdown)
#   --settle   seconds to wait after recovery before reading the loss
#              counters (default: the exporter's grace + sla + 15)
#   --bound    how long a refused connection may take (default 10)
#   --sample   how long to measure the traffic rate before starting (default 10)
#
# Needs kubectl (pointed at the cluster), curl and GNU coreutils. Exits 0
# when every demonstration passed.
set -uo pipefail

ns=meshflow
only=""
hard=0
settle=""
bound=10
sample=10
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace | -n) ns="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --hard) hard=1; shift ;;
    --settle) settle="$2"; shift 2 ;;
    --bound) bound="$2"; shift 2 ;;
    --sample) sample="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# The helpers the demonstrations share: kubectl in the namespace, logging and
# results, port-forwards and metric snapshots, waiting and comparing.
# shellcheck source-path=SCRIPTDIR source=verify-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/verify-lib.sh"

# --- preflight ---------------------------------------------------------------

log "namespace $ns, context $(kubectl config current-context 2>/dev/null)"
for tool in kubectl curl awk; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done
mode="$(kubectl get namespace "$ns" -o jsonpath='{.metadata.labels.istio\.io/dataplane-mode}' 2>/dev/null)"
[ "$mode" = ambient ] || log "warning: namespace $ns is not labelled istio.io/dataplane-mode=ambient (pods may still be, by their own label)"

k rollout status statefulset/kafka --timeout=600s >/dev/null || { echo "kafka is not ready" >&2; exit 1; }
for d in meshflow-producer meshflow-consumer meshflow-exporter; do
  k rollout status "deployment/$d" --timeout=300s >/dev/null || { echo "$d is not ready" >&2; exit 1; }
done

exporter_toml="$(k get configmap meshflow-config -o jsonpath='{.data.exporter\.toml}')"
grace="$(sed -n 's/^grace = "\(.*\)"/\1/p' <<<"$exporter_toml")"
sla="$(sed -n 's/^sla = "\(.*\)"/\1/p' <<<"$exporter_toml")"
if [ -z "$settle" ]; then
  settle=$(($(seconds "${grace:-30s}") + $(seconds "${sla:-60s}") + 15))
fi
log "exporter grace ${grace:-?}, sla ${sla:-?}: settling ${settle}s after each disruption"

connect || exit 1
snapshot || { echo "cannot read the exporter's and the producer's metrics" >&2; exit 1; }
read -r _ log0 _ <<<"$snap"
sleep "$sample"
snapshot || { echo "lost the exporter's metrics" >&2; exit 1; }
read -r _ log1 _ <<<"$snap"
if [ "$((log1 - log0))" -le 0 ]; then
  echo "no traffic: meshflow_messages_total{stage=\"log\"} did not grow in ${sample}s" >&2
  exit 1
fi
rate=$(((log1 - log0) / sample))
log "traffic: $rate messages/s reach the log"

# --- 1. broker failover ------------------------------------------------------

# kafka_topics POD ARGS...: kafka-topics.sh against the broker in POD (the
# container's own KAFKA_HEAP_OPTS is a small tool heap).
kafka_topics() {
  local pod="$1"
  shift
  k exec "$pod" -c kafka -- /opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 "$@"
}

# pod_replaced_and_ready POD OLD_UID: the pod was recreated and is Ready.
pod_replaced_and_ready() {
  local state
  state="$(k get pod "$1" -o jsonpath='{.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)"
  [ "${state% *}" != "$2" ] && [ "${state#* }" = True ]
}

broker_failover() {
  local leader before after victim a
  leader="$(kafka_topics kafka-0 --describe --topic meshflow.events 2>/dev/null |
    awk '$0 ~ /Partition: 0\t|Partition: 0 / { for (i = 1; i <= NF; i++) if ($i == "Leader:") print $(i + 1) }' | head -n 1)"
  victim="kafka-${leader:-1}"
  snapshot || { record FAIL "broker failover" "cannot read metrics"; return; }
  before="$snap"
  log "1. deleting $victim (leader of meshflow.events/0)$([ "$hard" -eq 1 ] && echo ', forced')"
  local uid
  uid="$(k get pod "$victim" -o jsonpath='{.metadata.uid}')"
  delete_pod "$victim"
  if ! watch_until 600 pod_replaced_and_ready "$victim" "$uid"; then
    record FAIL "broker failover" "$victim not ready again after ${watch_ms} ms"
    return
  fi
  log "1. $victim ready again after $((watch_ms / 1000)) s; longest stretch with nothing reaching the log: ${stall_ms} ms"
  local stall=$stall_ms back=$watch_ms
  settle_then_snapshot 1. "broker failover" "grace and SLA windows" || return
  after="$snap"
  read -r -a a <<<"$after"
  compare "broker failover ($victim)" "$before" "$after"
  results[-1]="${results[-1]}; broker back in $((back / 1000)) s, longest log stall ${stall} ms, under-replicated now ${a[6]}"
}

# --- 2. rolling restart -------------------------------------------------------

# count_partitions ARGS...: how many partitions `kafka-topics.sh --describe
# ARGS` lists, asked of the first broker that answers; empty if none does.
count_partitions() {
  local i out
  for i in $(seq 0 $((kafka_replicas - 1))); do
    if out="$(kafka_topics "kafka-$i" --describe "$@" 2>/dev/null)"; then
      grep -c 'Partition:' <<<"$out"
      return 0
    fi
  done
}

# kafka_rolled_out: the StatefulSet runs its new pod template everywhere and
# every broker is ready; samples the partitions under min.insync.replicas
# (peak in max_under_min_isr) on the way.
kafka_rolled_out() {
  local n
  n="$(count_partitions --under-min-isr-partitions)"
  [ -n "$n" ] && [ "$n" -gt "$max_under_min_isr" ] && max_under_min_isr="$n"
  k rollout status statefulset/kafka --timeout=1s >/dev/null 2>&1
}

rolling_restart() {
  local before after a ner_before ner_after ner urp back stall
  max_under_min_isr=0
  kafka_replicas="$(k get statefulset kafka -o jsonpath='{.spec.replicas}')"
  snapshot || { record FAIL "kafka rolling restart" "cannot read metrics"; return; }
  before="$snap"
  ner_before="$(sum "$producer_metrics" meshflow_producer_errors_total 'reason="not_enough_replicas"')"
  log "2. rolling restart of statefulset/kafka ($kafka_replicas brokers, one at a time)"
  if ! k rollout restart statefulset/kafka >/dev/null; then
    record FAIL "kafka rolling restart" "kubectl rollout restart failed"
    return
  fi
  if ! watch_until 3600 kafka_rolled_out; then
    record FAIL "kafka rolling restart" "not rolled out after ${watch_ms} ms"
    return
  fi
  back=$watch_ms
  stall=$stall_ms
  log "2. rolled out after $((back / 1000)) s; longest stretch with nothing reaching the log: ${stall} ms"
  settle_then_snapshot 2. "kafka rolling restart" "grace and SLA windows" || return
  after="$snap"
  read -r -a a <<<"$after"
  ner_after="$(sum "$producer_metrics" meshflow_producer_errors_total 'reason="not_enough_replicas"')"
  ner=$((ner_after - ner_before))
  urp="$(count_partitions --under-replicated-partitions)"
  local bad=0
  if [ "$ner" -ne 0 ] || [ "$max_under_min_isr" -ne 0 ] || [ "${urp:-1}" -ne 0 ] || [ "${a[6]}" -ne 0 ]; then
    bad=1
  fi
  compare "kafka rolling restart" "$before" "$after" \
    "NOT_ENOUGH_REPLICAS $ner, under min ISR during the rollout ${max_under_min_isr}, under-replicated partitions now ${urp:-unknown} (exporter: ${a[6]}); rolled out in $((back / 1000)) s, longest log stall ${stall} ms" \
    "$bad"
}

# --- 3. consumer failover ----------------------------------------------------

# consumer_recovered VICTIM BASELINE SLACK: the deleted pod is gone, the
# Deployment is at full strength and the group's lag is back within SLACK of
# BASELINE; tracks the peak lag in max_lag.
consumer_recovered() {
  local lag ready
  read -r _ _ _ _ _ lag _ <<<"$snap"
  [ "${lag:-0}" -gt "$max_lag" ] && max_lag="$lag"
  ready="$(k get deployment meshflow-consumer -o jsonpath='{.status.readyReplicas}/{.spec.replicas}')"
  [ "${ready%/*}" = "${ready#*/}" ] || return 1
  k get pod "$1" >/dev/null 2>&1 && return 1
  [ "${lag:-0}" -le $(($2 + $3)) ]
}

consumer_failover() {
  local victim before after baseline back
  max_lag=0
  victim="$(k get pods -l app.kubernetes.io/name=meshflow-consumer -o jsonpath='{.items[0].metadata.name}')"
  snapshot || { record FAIL "consumer failover" "cannot read metrics"; return; }
  before="$snap"
  read -r _ _ _ _ _ baseline _ <<<"$before"
  log "3. deleting consumer pod $victim (lag before: $baseline messages)"
  delete_pod "$victim"
  # One second of traffic of slack over the lag before the deletion.
  if ! watch_until 600 consumer_recovered "$victim" "$baseline" $((rate + 10)); then
    record FAIL "consumer failover" "not recovered after ${watch_ms} ms (lag peaked at $max_lag)"
    return
  fi
  back=$watch_ms
  log "3. recovered after $((back / 1000)) s; lag peaked at $max_lag messages"
  settle_then_snapshot 3. "consumer failover" "SLA window" || return
  after="$snap"
  compare "consumer failover ($victim)" "$before" "$after"
  results[-1]="${results[-1]}; recovered in $((back / 1000)) s, lag peak $max_lag messages"
}

# --- 4. isolation ------------------------------------------------------------

# A Kafka ApiVersions v0 request (correlation id 1, client id "verify") over
# bash's /dev/tcp; prints "answered"/"no-answer", the milliseconds it took and
# how the connection ended.
# shellcheck disable=SC2016 # expanded by the probe pod's bash, not here
probe_script='
target=$1 bound=$2
trap "" PIPE
ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
start=$(ms)
if ! exec 3<>"/dev/tcp/${target%:*}/${target#*:}"; then
  echo "no-answer $(($(ms) - start)) connect-refused"
  exit 0
fi
printf "\x00\x00\x00\x10\x00\x12\x00\x00\x00\x00\x00\x01\x00\x06verify" >&3 2>/dev/null
reply=$(timeout "$bound" head -c 8 <&3 2>/dev/null | od -An -tx1 | tr -d " \n")
took=$(($(ms) - start))
if [ "${reply:8:8}" = "00000001" ]; then
  echo "answered $took response"
elif [ "$took" -ge $((bound * 1000)) ]; then
  echo "no-answer $took timeout"
else
  echo "no-answer $took closed-by-peer"
fi
'

isolation() {
  local image target sa_intruder=mf-verify-intruder
  image="$(k get statefulset kafka -o jsonpath='{.spec.template.spec.containers[0].image}')"
  target="kafka-0.kafka-headless.$ns.svc.cluster.local:9092"
  k create serviceaccount "$sa_intruder" --dry-run=client -o yaml | k apply -f - >/dev/null
  verify_objects+=("serviceaccount/$sa_intruder")

  # name service-account dataplane-mode
  local pods=(
    "mf-verify-allowed meshflow-producer ambient"
    "mf-verify-outside default none"
    "mf-verify-wrong-sa $sa_intruder ambient"
  )
  local spec name sa mode
  for spec in "${pods[@]}"; do
    read -r name sa mode <<<"$spec"
    verify_objects+=("pod/$name")
    k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels:
    istio.io/dataplane-mode: $mode
    sidecar.istio.io/inject: "false"
    meshflow.io/kafka-client: "true"
    meshflow.io/verify: "true"
spec:
  serviceAccountName: $sa
  automountServiceAccountToken: false
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: probe
      image: $image
      command: ["sleep", "900"]
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      resources:
        requests: {cpu: 10m, memory: 32Mi}
        limits: {cpu: 200m, memory: 64Mi}
EOF
  done
  k wait --for=condition=Ready --timeout=180s pod/mf-verify-allowed pod/mf-verify-outside pod/mf-verify-wrong-sa >/dev/null || {
    record FAIL "isolation" "probe pods did not start"
    return
  }
  # ztunnel needs a moment to pick up a new in-mesh pod.
  sleep 5

  local outcome ms how
  for spec in "${pods[@]}"; do
    read -r name sa mode <<<"$spec"
    read -r outcome ms how <<<"$(k exec "$name" -- bash -c "$probe_script" probe "$target" "$bound" 2>&1 | tail -n 1)"
    local who="sa=$sa, dataplane-mode=$mode"
    case "$name" in
      mf-verify-allowed)
        if [ "$outcome" = answered ]; then
          record PASS "control: allowed client answered" "$who: broker answered in ${ms} ms"
        else
          record FAIL "control: allowed client answered" "$who: ${outcome:-error} after ${ms:-?} ms ($how): the probe itself does not work here"
        fi
        ;;
      *)
        if [ "$outcome" = no-answer ] && [ "${ms:-999999}" -le $((bound * 1000)) ] && [ "$how" != timeout ]; then
          record PASS "isolation: $name refused" "$who: $how after ${ms} ms"
        elif [ "$outcome" = no-answer ]; then
          record FAIL "isolation: $name refused" "$who: no answer, but $how after ${ms} ms (dropped, not reset: a NetworkPolicy?)"
        else
          record FAIL "isolation: $name refused" "$who: ${outcome:-error} after ${ms:-?} ms ($how)"
        fi
        ;;
    esac
  done
}

case "$only" in
  "") broker_failover; rolling_restart; consumer_failover; isolation ;;
  broker) broker_failover ;;
  rolling) rolling_restart ;;
  consumer) consumer_failover ;;
  isolation) isolation ;;
  *) echo "--only takes broker, rolling, consumer or isolation" >&2; exit 2 ;;
esac

echo
echo "meshflow verification in namespace $ns:"
printf '  %s\n' "${results[@]}"
echo "$((${#results[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
