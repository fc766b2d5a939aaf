#!/usr/bin/env bash
# k8s-roll.sh: rolls a new shoal image through the leaves of docs/deploy/kubernetes.yaml in
# place, one Pod at a time, so that every leaf restores from shared memory.
#
#   docs/deploy/k8s-roll.sh registry.example.com/shoal:1.1.0
#
# A running Pod's container image may be changed: the kubelet then stops that container
# (SIGTERM: the leaf hands off to /dev/shm and exits) and starts the new image in the same Pod,
# whose memory-backed /dev/shm emptyDir is still there. So, first the StatefulSet's template (for
# Pods created later; updateStrategy OnDelete keeps the controller from replacing any now), then
# for each leaf Pod in ordinal order: pull the image on its node, patch the Pod's leaf container
# image, wait until that container restarted (restartCount up, another imageID, Ready), check
# the leaf came back from shared memory with at least its rows, and wait until every aggregator
# counts it healthy again. Then the next Pod.
#
# Needs kubectl and jq. Stops (exit 1) at the first leaf that does not come back in time,
# leaving the others serving; run it again to go on (Pods already on the image are skipped).
# Settings (environment): the defaults match docs/deploy/kubernetes.yaml.
set -euo pipefail

NAMESPACE="${NAMESPACE:-shoal}"
STATEFULSET="${STATEFULSET:-shoal-leaf}"
CONTAINER="${CONTAINER:-leaf}"
AGGREGATOR_DEPLOYMENT="${AGGREGATOR_DEPLOYMENT:-shoal-aggregator}"
AGGREGATOR_CONTAINER="${AGGREGATOR_CONTAINER:-aggregator}"
SHOAL_CLI="${SHOAL_CLI:-node /opt/shoal/dist/server/cli/cli.js}"
LEAF_PORT="${LEAF_PORT:-7001}"
AGGREGATOR_PORT="${AGGREGATOR_PORT:-7000}"
LEAF_TIMEOUT_S="${LEAF_TIMEOUT_S:-600}"        # patch -> the new container Ready (and each pre-pull)
AGGREGATOR_TIMEOUT_S="${AGGREGATOR_TIMEOUT_S:-120}"  # Ready -> every aggregator counts it healthy
ALLOW_DISK="${ALLOW_DISK:-0}"   # 1: go on when a leaf comes back from disk (a new block layout)
PREPULL="${PREPULL:-1}"         # 0: skip pulling on each node before its leaves stop

say() { echo "k8s-roll: $*"; }
die() { echo "k8s-roll: $*" >&2; exit 1; }
k() { kubectl -n "$NAMESPACE" "$@"; }

[[ $# -eq 1 && $1 != -* ]] || { echo "usage: $0 IMAGE   (e.g. $0 registry.example.com/shoal:1.1.0)" >&2; exit 2; }
IMAGE=$1
command -v jq >/dev/null || die "needs jq"
read -r -a CLI <<<"$SHOAL_CLI"
FILTER="?(@.name==\"$CONTAINER\")"

# "k=v,k=v" from an object's spec.selector.matchLabels.
selector_of() { k get "$1" -o json | jq -r '.spec.selector.matchLabels | to_entries | map("\(.key)=\(.value)") | join(",")'; }

# Replaces the image of the container named $CONTAINER. A JSON patch addresses containers by
# index; its "test" op makes the patch fail rather than change another container if the list
# changed in between.
patch_image() { # OBJECT POINTER-TO-CONTAINERS JSONPATH-TO-CONTAINERS
  local names index=0 name
  names=$(k get "$1" -o jsonpath="{$3[*].name}")
  for name in $names; do [[ $name == "$CONTAINER" ]] && break; index=$((index + 1)); done
  [[ $name == "$CONTAINER" ]] || die "$1 has no container named $CONTAINER (it has: $names)"
  k patch "$1" --type=json -p "[{\"op\":\"test\",\"path\":\"$2/$index/name\",\"value\":\"$CONTAINER\"},{\"op\":\"replace\",\"path\":\"$2/$index/image\",\"value\":\"$IMAGE\"}]" >/dev/null
}

# "uid|restartCount|ready|imageID|waitingReason" of the leaf container ('|': a field may be empty).
container_state() {
  k get pod "$1" -o jsonpath="{.metadata.uid}|{.status.containerStatuses[$FILTER].restartCount}|{.status.containerStatuses[$FILTER].ready}|{.status.containerStatuses[$FILTER].imageID}|{.status.containerStatuses[$FILTER].state.waiting.reason}"
}

# The leaf's own GET /v1/status, asked from inside its container (SHOAL_TOKEN is set there).
leaf_status() { k exec "$1" -c "$CONTAINER" -- "${CLI[@]}" status --url "http://127.0.0.1:$LEAF_PORT" --json; }

# Runs the image once on NODE, so that the leaf's restart does not wait for the pull.
PULLED=" "
prepull() {
  local node=$1 name secrets
  [[ $PREPULL == 1 && $PULLED != *" $node "* ]] || return 0
  name="shoal-prepull-$(date +%s)-$RANDOM"
  secrets=$(k get "statefulset/$STATEFULSET" -o jsonpath='{.spec.template.spec.imagePullSecrets}')
  say "pulling $IMAGE on node $node"
  k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: { name: $name, labels: { app.kubernetes.io/name: shoal-prepull } }
spec:
  nodeName: $node
  restartPolicy: Never
  imagePullSecrets: ${secrets:-[]}
  securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: pull
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      command: [node, --version]
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: [ALL] } }
      resources: { requests: { cpu: 10m, memory: 64Mi }, limits: { memory: 128Mi } }
EOF
  if ! k wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" --timeout="${LEAF_TIMEOUT_S}s" >/dev/null; then
    die "$IMAGE did not run on node $node within ${LEAF_TIMEOUT_S}s; no leaf there was touched (kubectl -n $NAMESPACE describe pod $name, then delete it)"
  fi
  k delete pod "$name" --wait=false >/dev/null
  PULLED+="$node "
}

# Waits until every aggregator Pod counts POD healthy from a status it took after READY_AT
# ($SECONDS when the new container was Ready): an older one still describes the old process.
wait_aggregators() { # POD IP READY_AT
  local pod=$1 ip=$2 ready_at=$3 deadline=$((SECONDS + AGGREGATOR_TIMEOUT_S)) agg seen
  for agg in $(k get pods -l "$AGGREGATOR_SELECTOR" -o jsonpath='{.items[*].metadata.name}'); do
    while :; do
      seen=$(k exec "$agg" -c "$AGGREGATOR_CONTAINER" -- "${CLI[@]}" status --url "http://127.0.0.1:$AGGREGATOR_PORT" --json 2>/dev/null |
        jq -r --arg id "$pod" --arg ip "$ip" '[.leaves[]? | select(.id == $id or ((.url // "") | contains("//\($ip):") or contains("//[\($ip)]:")))][0]
          | if . == null then "absent" else "\(.state) \(.memberState // "serving") \(.lastSeenMsAgo // "never")" end' || echo "unreachable")
      if [[ $seen =~ ^healthy\ serving\ ([0-9]+)$ ]] && (( BASH_REMATCH[1] < (SECONDS - ready_at) * 1000 )); then break; fi
      (( SECONDS < deadline )) || die "$pod serves again, but aggregator $agg does not count it healthy after ${AGGREGATOR_TIMEOUT_S}s (it says: $seen)"
      sleep 1
    done
  done
}

roll_one() {
  local pod=$1 uid restarts image_id reason now_uid now_restarts now_ready now_id status rows now_rows source ready_at deadline
  k wait --for=condition=Ready pod -l "$LEAF_SELECTOR" --timeout="${LEAF_TIMEOUT_S}s" >/dev/null ||
    die "not every leaf Pod is Ready after ${LEAF_TIMEOUT_S}s; fix them first (rolling on would lower coverage further)"
  if [[ $(k get pod "$pod" -o jsonpath="{.spec.containers[$FILTER].image}") == "$IMAGE" ]]; then
    say "$pod: already on $IMAGE, skipped"
    return
  fi
  IFS='|' read -r uid restarts _ image_id reason <<<"$(container_state "$pod")"
  rows=$(leaf_status "$pod" | jq -r '.rows') || die "$pod: cannot read the leaf's status from inside its container (see the error above)"
  prepull "$(k get pod "$pod" -o jsonpath='{.spec.nodeName}')"
  say "$pod: $rows rows; replacing its $CONTAINER container's image (the leaf hands off to /dev/shm)"
  patch_image "pod/$pod" /spec/containers .spec.containers
  deadline=$((SECONDS + LEAF_TIMEOUT_S))
  while :; do
    IFS='|' read -r now_uid now_restarts now_ready now_id reason <<<"$(container_state "$pod")" || true
    if [[ -n $now_uid && $now_uid != "$uid" ]]; then
      # Deleted or evicted meanwhile: the controller made a new Pod from the (new) template.
      [[ $ALLOW_DISK == 1 ]] || die "$pod was replaced by a new Pod during its roll: its /dev/shm is gone and it recovers from disk; rerun with ALLOW_DISK=1 to go on"
      uid=$now_uid restarts=-1 image_id=""
    fi
    if (( ${now_restarts:-0} > restarts )) && [[ $now_ready == true && -n $now_id && $now_id != "$image_id" ]]; then break; fi
    (( SECONDS < deadline )) || die "$pod did not come back within ${LEAF_TIMEOUT_S}s (restartCount $restarts -> ${now_restarts:-?}, ready ${now_ready:-?}, imageID ${now_id:-?}${reason:+, waiting: $reason}; an unchanged imageID means $IMAGE is the build it ran already); the other leaves keep serving"
    sleep 1
  done
  ready_at=$SECONDS
  status=$(leaf_status "$pod") || die "$pod: Ready again, but its status cannot be read from inside its container (see the error above)"
  source=$(jq -r '.restart.source' <<<"$status")
  now_rows=$(jq -r '.rows' <<<"$status")
  if [[ $source != shm && $rows -gt 0 ]]; then
    [[ $ALLOW_DISK == 1 ]] || die "$pod came back from $source, not shared memory ($(jq -r '.restart.reason' <<<"$status")); rerun with ALLOW_DISK=1 to roll on anyway (expected when the new build changes the block layout version)"
    say "$pod: came back from $source ($(jq -r '.restart.reason' <<<"$status"))"
  fi
  (( now_rows >= rows )) || die "$pod holds $now_rows rows, its predecessor held $rows"
  wait_aggregators "$pod" "$(k get pod "$pod" -o jsonpath='{.status.podIP}')" "$ready_at"
  say "$pod: back from $source in $(jq -r '.restart.ms' <<<"$status") ms with $now_rows rows; every aggregator counts it healthy"
}

strategy=$(k get "statefulset/$STATEFULSET" -o jsonpath='{.spec.updateStrategy.type}')
[[ $strategy == OnDelete ]] || die "statefulset/$STATEFULSET has updateStrategy $strategy: a template change would make the controller replace every Pod (a restart from disk); set it to OnDelete first"
LEAF_SELECTOR=$(selector_of "statefulset/$STATEFULSET")
AGGREGATOR_SELECTOR=$(selector_of "deployment/$AGGREGATOR_DEPLOYMENT")
replicas=$(k get "statefulset/$STATEFULSET" -o jsonpath='{.spec.replicas}')

say "statefulset/$STATEFULSET: template image -> $IMAGE (for Pods created from now on; OnDelete replaces none)"
patch_image "statefulset/$STATEFULSET" /spec/template/spec/containers .spec.template.spec.containers
for ((ordinal = 0; ordinal < replicas; ordinal++)); do roll_one "$STATEFULSET-$ordinal"; done
say "done: all $replicas leaves run $IMAGE"
