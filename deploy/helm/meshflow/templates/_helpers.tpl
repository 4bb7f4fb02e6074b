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

{{/* Kafka bootstrap servers: every broker's stable DNS name. */}}
{{- define "meshflow.kafkaBootstrap" -}}
{{- $servers := list -}}
{{- range $i := until (int .Values.kafka.replicas) -}}
{{- $servers = append $servers (printf "%s-%d.%s.%s.svc.%s:9092" (include "meshflow.kafkaName" $) $i (include "meshflow.kafkaHeadless" $) $.Release.Namespace $.Values.clusterDomain) -}}
{{- end -}}
{{- join "," $servers -}}
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
