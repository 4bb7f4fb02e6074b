{{/*
Shared names, labels and fragments. Resource names are fixed (one release
per namespace) so that the Kafka addresses, the SPIFFE principals and
deploy/helm/verify.sh agree without being told the release name.
*/}}

{{/* The three services, with their contract ports (docs/contracts.md). */}}
{{- define "meshflow.services" -}}
producer: 9464
consumer: 9465
exporter: 9466
{{- end }}

{{/* The services this release runs: the exporter always, the producer and consumer unless disabled. */}}
{{- define "meshflow.enabledServices" -}}
{{- range $component, $port := include "meshflow.services" . | fromYaml }}
{{- if or (eq $component "exporter") (index $.Values $component).enabled }}
{{ $component }}: {{ $port }}
{{- end }}
{{- end }}
{{- end }}

{{- define "meshflow.kafkaName" -}}kafka{{- end }}
{{- define "meshflow.kafkaHeadless" -}}kafka-headless{{- end }}

{{/* Labels on every resource that is not a workload's own. */}}
{{- define "meshflow.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "meshflow.commonLabels" . }}
{{- end }}

{{- define "meshflow.commonLabels" -}}
app.kubernetes.io/part-of: meshflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Labels of a workload's resources: the common ones plus its selector labels. Argument: as for meshflow.selectorLabels. */}}
{{- define "meshflow.workloadLabels" -}}
{{ include "meshflow.selectorLabels" . }}
{{ include "meshflow.commonLabels" .root }}
{{- end }}

{{/*
Labels of a workload's pod template: no helm.sh/chart, because a changed
pod template restarts every pod, and a chart version bump alone must not
roll Kafka. Argument: as for meshflow.selectorLabels.
*/}}
{{- define "meshflow.podTemplateLabels" -}}
{{ include "meshflow.selectorLabels" . }}
app.kubernetes.io/part-of: meshflow
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/*
Selector labels of one workload. Argument: (dict "root" $ "name" "meshflow-producer" "component" "producer").
*/}}
{{- define "meshflow.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Pod labels beyond the selector: ambient enrollment, an explicit opt-out of
sidecar injection, and the Kafka client marker the NetworkPolicies use.
Argument: (dict "root" $ "kafkaClient" true).
*/}}
{{- define "meshflow.meshPodLabels" -}}
sidecar.istio.io/inject: "false"
{{- if .root.Values.mesh.enrollPods }}
istio.io/dataplane-mode: ambient
{{- end }}
{{- if .kafkaClient }}
meshflow.io/kafka-client: "true"
{{- end }}
{{- end }}

{{/* image reference: repository, then @digest or :tag. Argument: an image dict and a default tag. */}}
{{- define "meshflow.imageRef" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ .image.tag | default .defaultTag }}
{{- end -}}
{{- end }}

{{/* Kafka bootstrap servers: every broker's stable DNS name, or the external Kafka's list. */}}
{{- define "meshflow.kafkaBootstrap" -}}
{{- if not .Values.kafka.enabled -}}
{{ .Values.kafka.external.bootstrapServers | trim }}
{{- else -}}
{{- $servers := list -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- $servers = append $servers (printf "%s-%d.%s.%s.svc.%s:9092" (include "meshflow.kafkaName" $) $i (include "meshflow.kafkaHeadless" $) $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $servers -}}
{{- end -}}
{{- end }}

{{/* KRaft controller.quorum.bootstrap.servers: host:9093 of every node. */}}
{{- define "meshflow.kafkaControllers" -}}
{{- $controllers := list -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- $controllers = append $controllers (printf "%s-%d.%s.%s.svc.%s:9093" (include "meshflow.kafkaName" $) $i (include "meshflow.kafkaHeadless" $) $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $controllers -}}
{{- end }}

{{/* SPIFFE principal (as Istio writes it) of a service account in the release namespace. Argument: (dict "root" $ "sa" "name"). */}}
{{- define "meshflow.principal" -}}
{{ .root.Values.mesh.trustDomain }}/ns/{{ .root.Release.Namespace }}/sa/{{ .sa }}
{{- end }}

{{/* SPIFFE principal of the Prometheus that scrapes. */}}
{{- define "meshflow.prometheusPrincipal" -}}
{{ .Values.mesh.trustDomain }}/ns/{{ .Values.monitoring.prometheus.namespace }}/sa/{{ .Values.monitoring.prometheus.serviceAccount }}
{{- end }}

{{/* Pod-level security context. Argument: the uid/gid to run as. */}}
{{- define "meshflow.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container security context: non-root, read-only root, no capabilities. */}}
{{- define "meshflow.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* A DNS-1123 name from a file name: meshflow-slo.rules.yml -> meshflow-slo. */}}
{{- define "meshflow.fileResourceName" -}}
{{- $stem := base . | trimSuffix ".json" | trimSuffix ".yml" | trimSuffix ".yaml" | trimSuffix ".rules" | lower -}}
{{- regexReplaceAll "[^a-z0-9-]+" $stem "-" | trunc 50 | trimSuffix "-" -}}
{{- end }}

{{/* NetworkPolicy egress rule for cluster DNS (also ztunnel's DNS proxy upstream). */}}
{{- define "meshflow.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}

{{/*
The external Kafka (kafka.enabled=false). Client TLS files are mounted from
their Secrets under this directory, outside /etc/meshflow (the ConfigMap).
*/}}
{{- define "meshflow.kafkaTlsDir" -}}/etc/meshflow-kafka/tls{{- end }}

{{/* Whether the services authenticate with SASL. */}}
{{- define "meshflow.kafkaSasl" -}}
{{- if .Values.kafka.external.sasl.mechanism }}true{{ end -}}
{{- end }}

{{/* [kafka] security_protocol: plaintext, ssl, sasl_plaintext or sasl_ssl, from tls.enabled and SASL. */}}
{{- define "meshflow.kafkaSecurityProtocol" -}}
{{- if include "meshflow.kafkaSasl" . }}sasl_{{ end -}}
{{- if .Values.kafka.external.tls.enabled }}ssl{{ else }}plaintext{{ end -}}
{{- end }}

{{/* The [kafka] table of every service (and [kafka.librdkafka] with an external Kafka). */}}
{{- define "meshflow.kafkaToml" -}}
[kafka]
bootstrap_servers = {{ include "meshflow.kafkaBootstrap" . | toJson }}
{{- if not .Values.kafka.enabled }}
{{- $e := .Values.kafka.external }}
{{- $dir := include "meshflow.kafkaTlsDir" . }}
security_protocol = {{ include "meshflow.kafkaSecurityProtocol" . | toJson }}
{{- with $e.sasl.mechanism }}
sasl_mechanism = {{ . | toJson }}
{{- if and $e.sasl.username (not $e.sasl.usernameSecret.name) }}
sasl_username = {{ $e.sasl.username | toJson }}
{{- end }}
{{- end }}
{{- if $e.tls.enabled }}
{{- if $e.tls.ca.secretName }}
ssl_ca_location = {{ printf "%s/ca.crt" $dir | toJson }}
{{- end }}
{{- if $e.tls.clientCert.secretName }}
ssl_certificate_location = {{ printf "%s/client.crt" $dir | toJson }}
ssl_key_location = {{ printf "%s/client.key" $dir | toJson }}
{{- end }}
{{- end }}
{{- with $e.librdkafka }}

[kafka.librdkafka]
{{- range $key, $value := . }}
{{ $key | toJson }} = {{ $value | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of every service container for an external Kafka: the SASL credentials from their Secrets. */}}
{{- define "meshflow.kafkaEnv" -}}
{{- if not .Values.kafka.enabled }}
{{- $sasl := .Values.kafka.external.sasl }}
{{- $password := and $sasl.mechanism (ne $sasl.mechanism "OAUTHBEARER") }}
{{- if and $password $sasl.usernameSecret.name }}
- name: MESHFLOW__KAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $sasl.usernameSecret.name }}
      key: {{ $sasl.usernameSecret.key }}
{{- end }}
{{- if $password }}
- name: MESHFLOW__KAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $sasl.passwordSecret.name }}
      key: {{ $sasl.passwordSecret.key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volume mounts and volumes of every service container for an external Kafka: TLS files and secretFiles. */}}
{{- define "meshflow.kafkaVolumeMounts" -}}
{{- if not .Values.kafka.enabled }}
{{- $e := .Values.kafka.external }}
{{- if and $e.tls.enabled (or $e.tls.ca.secretName $e.tls.clientCert.secretName) }}
- name: kafka-tls
  mountPath: {{ include "meshflow.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- range $e.secretFiles }}
- name: kafka-file-{{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{- define "meshflow.kafkaVolumes" -}}
{{- if not .Values.kafka.enabled }}
{{- $tls := .Values.kafka.external.tls }}
{{- if and $tls.enabled (or $tls.ca.secretName $tls.clientCert.secretName) }}
- name: kafka-tls
  projected:
    defaultMode: 0440
    sources:
      {{- with $tls.ca.secretName }}
      - secret:
          name: {{ . }}
          items:
            - {key: {{ $tls.ca.key | quote }}, path: ca.crt}
      {{- end }}
      {{- with $tls.clientCert.secretName }}
      - secret:
          name: {{ . }}
          items:
            - {key: {{ $tls.clientCert.certKey | quote }}, path: client.crt}
            - {key: {{ $tls.clientCert.keyKey | quote }}, path: client.key}
      {{- end }}
{{- end }}
{{- range .Values.kafka.external.secretFiles }}
- name: kafka-file-{{ .name }}
  secret:
    secretName: {{ .secretName }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules from the services to an external Kafka. */}}
{{- define "meshflow.kafkaExternalEgress" -}}
{{- range .Values.kafka.external.egress }}
{{- $ports := .ports }}
{{- with .cidrs }}
- to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range $ports }}
    - {port: {{ int . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- if .namespace }}
# A Kafka in namespace {{ .namespace }}: its ports, and HBONE if that namespace is in the mesh.
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .namespace }}
      podSelector:
        matchLabels:
          {{- toYaml (.podLabels | default dict) | nindent 10 }}
  ports:
    - {port: 15008, protocol: TCP}
    {{- range $ports }}
    - {port: {{ int . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuses values that would render a release the services or the API server
refuse, or that would put a secret into the ConfigMap; each message names
the key to change. Renders nothing.
*/}}
{{- define "meshflow.validate" -}}
{{- $k := .Values.kafka -}}
{{- if not $k.enabled -}}
{{- $e := $k.external -}}
{{- if not (trim $e.bootstrapServers) -}}
{{- fail "kafka.enabled is false: set kafka.external.bootstrapServers to the existing Kafka's host:port list (comma-separated)" -}}
{{- end -}}
{{- if gt (int $e.minInsyncReplicas) (int $e.brokers) -}}
{{- fail (printf "kafka.external.minInsyncReplicas (%d) must be at most kafka.external.brokers (%d); 0 and 0 when unknown" (int $e.minInsyncReplicas) (int $e.brokers)) -}}
{{- end -}}
{{- if or .Values.producer.enabled .Values.consumer.enabled -}}
{{- $rf := int .Values.topics.replicationFactor -}}
{{- if and (gt (int $e.brokers) 0) (gt $rf (int $e.brokers)) -}}
{{- fail (printf "topics.replicationFactor (%d) is above kafka.external.brokers (%d): the services could not create their topics" $rf (int $e.brokers)) -}}
{{- end -}}
{{- if lt $rf (int $e.minInsyncReplicas) -}}
{{- fail (printf "topics.replicationFactor (%d) is below kafka.external.minInsyncReplicas (%d): acks=all writes would always fail" $rf (int $e.minInsyncReplicas)) -}}
{{- end -}}
{{- end -}}
{{- if and (not $e.tls.enabled) (or $e.tls.ca.secretName $e.tls.clientCert.secretName) -}}
{{- fail "kafka.external.tls.enabled is false but a CA or client certificate Secret is set: enable TLS or remove the Secret names" -}}
{{- end -}}
{{- if eq $e.sasl.mechanism "OAUTHBEARER" -}}
{{- if or $e.sasl.username $e.sasl.usernameSecret.name $e.sasl.passwordSecret.name -}}
{{- fail "kafka.external.sasl.mechanism is OAUTHBEARER: it takes no user name or password; set the sasl.oauthbearer.* settings in kafka.external.librdkafka" -}}
{{- end -}}
{{- else if $e.sasl.mechanism -}}
{{- if not $e.sasl.passwordSecret.name -}}
{{- fail (printf "kafka.external.sasl.mechanism is %s: set kafka.external.sasl.passwordSecret.name (and .key) to the Secret holding the password" $e.sasl.mechanism) -}}
{{- end -}}
{{- if not (or $e.sasl.username $e.sasl.usernameSecret.name) -}}
{{- fail (printf "kafka.external.sasl.mechanism is %s: set kafka.external.sasl.username, or kafka.external.sasl.usernameSecret.name to a Secret holding it" $e.sasl.mechanism) -}}
{{- end -}}
{{- else if or $e.sasl.username $e.sasl.usernameSecret.name $e.sasl.passwordSecret.name -}}
{{- fail "kafka.external.sasl has credentials but no mechanism: set kafka.external.sasl.mechanism" -}}
{{- end -}}
{{- /* Keys the services' typed settings own (services/*: OWNED_KEYS); the services refuse them in the map. */ -}}
{{- $owned := list "bootstrap.servers" "metadata.broker.list" "security.protocol" "sasl.mechanism" "sasl.mechanisms" "sasl.username" "sasl.password" "ssl.ca.location" "ssl.certificate.location" "ssl.key.location" "acks" "request.required.acks" "enable.idempotence" "message.timeout.ms" "delivery.timeout.ms" "linger.ms" "queue.buffering.max.ms" "group.id" "client.id" "enable.auto.offset.store" "enable.auto.commit" "session.timeout.ms" "heartbeat.interval.ms" "auto.offset.reset" -}}
{{- range $key, $_ := $e.librdkafka -}}
{{- if has $key $owned -}}
{{- fail (printf "kafka.external.librdkafka.%s: a typed meshflow setting owns this librdkafka key (kafka.external.*, topics.*, producer.*, consumer.*); set it there" $key) -}}
{{- end -}}
{{- if regexMatch "(^|[._])(password|passphrase|secret)$|key[._]pem$|(jaas|oauthbearer)[._]config$" (lower $key) -}}
{{- fail (printf "kafka.external.librdkafka.%s holds a secret, and the map is rendered into a ConfigMap: mount the secret from a Secret (kafka.external.secretFiles) and use a file setting, see docs/kubernetes.md" $key) -}}
{{- end -}}
{{- end -}}
{{- $names := dict -}}
{{- range $e.secretFiles -}}
{{- if hasKey $names .name -}}
{{- fail (printf "kafka.external.secretFiles: name %s is used twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- if or (eq (trimSuffix "/" .mountPath) (include "meshflow.kafkaTlsDir" $)) (hasPrefix (printf "%s/" (include "meshflow.kafkaTlsDir" $)) .mountPath) -}}
{{- fail (printf "kafka.external.secretFiles %s: mountPath %s is where the TLS files are mounted" .name .mountPath) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not $e.egress) -}}
{{- fail "networkPolicy.enabled with an external Kafka: set kafka.external.egress (CIDRs or a namespace, and ports) so the services may reach the brokers, or disable networkPolicy" -}}
{{- end -}}
{{- end -}}
{{- end }}
