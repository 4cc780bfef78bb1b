{{/*
Chart name, truncated to the 63 characters a Kubernetes name allows.
*/}}
{{- define "reactor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: the release name, plus the chart name unless the
release name already contains it.
*/}}
{{- define "reactor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "reactor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object of the release, without a component.
*/}}
{{- define "reactor.commonLabels" -}}
helm.sh/chart: {{ include "reactor.chart" . }}
app.kubernetes.io/name: {{ include "reactor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of the processor's objects (Deployment, pods, Service, ...).
*/}}
{{- define "reactor.labels" -}}
{{ include "reactor.commonLabels" . }}
app.kubernetes.io/component: processor
{{- end }}

{{/*
Selector labels of the processor pods: must stay stable across upgrades. The
component keeps hook pods (helm test, create-topics) out of the Service and
the PodDisruptionBudget.
*/}}
{{- define "reactor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reactor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: processor
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "reactor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reactor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image reference; a digest wins over the tag.
*/}}
{{- define "reactor.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Whether an autoscaler owns the replica count.
*/}}
{{- define "reactor.autoscaled" -}}
{{- if or .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled }}true{{ end }}
{{- end }}

{{/* ------------------------------------------------------------------ */}}
{{/* Configuration overlay: .Values.config rendered as TOML.             */}}
{{/* ------------------------------------------------------------------ */}}

{{/*
Helm's own toToml cannot be used: values arrive as float64, so it writes
batch_max_messages = 2000.0, which Reactor rejects for an integer key. This
renderer writes whole numbers as integers (Reactor's float keys accept those
too), strings with JSON escapes (valid TOML basic strings), and tables with
their scalar keys first, in key order. Any key ending in "password" fails:
secrets never go into a ConfigMap.
*/}}
{{- define "reactor.configToml" -}}
# Rendered by the reactor chart from the value `config`: an overlay on
# Reactor's built-in defaults (config/default.toml). REACTOR__* environment
# variables set by the chart win over it.
{{- if not .Values.config }}
# (empty: the defaults apply)
{{- end }}
{{- include "reactor.toml.table" (dict "path" (list) "table" .Values.config) }}
{{- end }}

{{- define "reactor.toml.table" -}}
{{- $path := .path }}
{{- range $key, $value := .table }}
{{- if regexMatch "(?i)password$" $key }}
{{- fail (printf "config.%s: secrets must not go into the ConfigMap; reference a Secret instead (e.g. clickhouse.existingSecret, kafka.sasl.existingSecret, schemaRegistry.existingSecret)" (append $path $key | join ".")) }}
{{- end }}
{{- if and (not (kindIs "map" $value)) (not (kindIs "invalid" $value)) }}
{{ include "reactor.toml.key" $key }} = {{ include "reactor.toml.value" (dict "path" (append $path $key) "value" $value) }}
{{- end }}
{{- end }}
{{- range $key, $value := .table }}
{{- if kindIs "map" $value }}
{{- $sub := append $path $key }}

[{{ include "reactor.toml.path" $sub }}]
{{- include "reactor.toml.table" (dict "path" $sub "table" $value) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "reactor.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "reactor.toml.path" -}}
{{- range $i, $key := . }}{{ if $i }}.{{ end }}{{ include "reactor.toml.key" $key }}{{ end }}
{{- end }}

{{- define "reactor.toml.value" -}}
{{- $v := .value }}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if kindIs "float64" $v }}{{ if eq $v (floor $v) }}{{ printf "%.0f" $v }}{{ else }}{{ toJson $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}{{ $v }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "reactor.toml.value" (dict "path" $.path "value" $e) }}{{ end }}]
{{- else }}{{ fail (printf "config.%s: a %s cannot be written as a TOML value" (join "." .path) (kindOf $v)) }}
{{- end }}
{{- end }}

{{/* ------------------------------------------------------------------ */}}
{{/* Secrets and TLS material mounted as files.                         */}}
{{/* ------------------------------------------------------------------ */}}

{{/*
The Secret volumes, as a YAML list of {name, secret, mountPath, items}. TLS
material is always a file (Reactor takes paths); passwords only with
secretsAsFiles. reactor.env names the same paths.
*/}}
{{- define "reactor.secretFiles" -}}
{{- $files := list }}
{{- $asFiles := .Values.secretsAsFiles }}
{{- with .Values.kafka.tls }}
{{- if and .enabled .existingSecret }}
{{- $items := list }}
{{- if .caKey }}{{ $items = append $items (dict "key" .caKey "path" "ca.crt") }}{{ end }}
{{- if .certKey }}{{ $items = append $items (dict "key" .certKey "path" "tls.crt") }}{{ end }}
{{- if .keyKey }}{{ $items = append $items (dict "key" .keyKey "path" "tls.key") }}{{ end }}
{{- if and $asFiles .keyPasswordKey }}{{ $items = append $items (dict "key" .keyPasswordKey "path" "key-password") }}{{ end }}
{{- if $items }}
{{- $files = append $files (dict "name" "kafka-tls" "secret" .existingSecret "mountPath" "/etc/reactor/tls/kafka" "items" $items) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if and .mechanism $asFiles }}
{{- $files = append $files (dict "name" "kafka-sasl" "secret" .existingSecret "mountPath" "/etc/reactor/secrets/kafka-sasl" "items" (list (dict "key" .passwordKey "path" "password"))) }}
{{- end }}
{{- end }}
{{- with .Values.clickhouse }}
{{- if and .existingSecret .passwordKey $asFiles }}
{{- $files = append $files (dict "name" "clickhouse" "secret" .existingSecret "mountPath" "/etc/reactor/secrets/clickhouse" "items" (list (dict "key" .passwordKey "path" "password"))) }}
{{- end }}
{{- if .tls.existingSecret }}
{{- $files = append $files (dict "name" "clickhouse-tls" "secret" .tls.existingSecret "mountPath" "/etc/reactor/tls/clickhouse" "items" (list (dict "key" .tls.caKey "path" "ca.crt"))) }}
{{- end }}
{{- end }}
{{- with .Values.schemaRegistry }}
{{- if and .url .existingSecret .passwordKey $asFiles }}
{{- $files = append $files (dict "name" "schema-registry" "secret" .existingSecret "mountPath" "/etc/reactor/secrets/schema-registry" "items" (list (dict "key" .passwordKey "path" "password"))) }}
{{- end }}
{{- if and .url .tls.existingSecret }}
{{- $files = append $files (dict "name" "schema-registry-tls" "secret" .tls.existingSecret "mountPath" "/etc/reactor/tls/schema-registry" "items" (list (dict "key" .tls.caKey "path" "ca.crt"))) }}
{{- end }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/*
A secret setting as an environment variable: VAR from a secretKeyRef, or,
with secretsAsFiles, VAR_FILE naming the mounted file.
Arguments: root, var, secret, key, file.
*/}}
{{- define "reactor.secretEnv" -}}
{{- if .root.Values.secretsAsFiles }}
- name: {{ .var }}_FILE
  value: {{ .file | quote }}
{{- else }}
- name: {{ .var }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ .key | quote }}
{{- end }}
{{- end }}

{{/*
A plain setting that may instead come from a Secret key.
Arguments: var, value, secret, key.
*/}}
{{- define "reactor.plainOrSecretEnv" -}}
{{- if .key }}
- name: {{ .var }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ .key | quote }}
{{- else if .value }}
- name: {{ .var }}
  value: {{ .value | quote }}
{{- end }}
{{- end }}

{{/*
The environment the chart sets for Reactor (the reactor container and the
create-topics Job): REACTOR__SECTION__KEY, which wins over the ConfigMap.
*/}}
{{- define "reactor.env" -}}
- name: REACTOR__KAFKA__BROKERS
  value: {{ join "," .Values.kafka.brokers | quote }}
- name: REACTOR__KAFKA__GROUP_ID
  value: {{ .Values.kafka.groupId | quote }}
- name: REACTOR__KAFKA__PREFETCH_KBYTES_PER_PARTITION
  value: {{ .Values.kafka.prefetchKbytesPerPartition | quote }}
{{- with .Values.kafka.tls }}
{{- if .enabled }}
- name: REACTOR__KAFKA__TLS__ENABLED
  value: "true"
{{- if .existingSecret }}
{{- if .caKey }}
- name: REACTOR__KAFKA__TLS__CA_FILE
  value: /etc/reactor/tls/kafka/ca.crt
{{- end }}
{{- if .certKey }}
- name: REACTOR__KAFKA__TLS__CERT_FILE
  value: /etc/reactor/tls/kafka/tls.crt
- name: REACTOR__KAFKA__TLS__KEY_FILE
  value: /etc/reactor/tls/kafka/tls.key
{{- end }}
{{- if .keyPasswordKey }}
{{- include "reactor.secretEnv" (dict "root" $ "var" "REACTOR__KAFKA__TLS__KEY_PASSWORD" "secret" .existingSecret "key" .keyPasswordKey "file" "/etc/reactor/tls/kafka/key-password") }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
- name: REACTOR__KAFKA__SASL__MECHANISM
  value: {{ .mechanism | quote }}
{{- include "reactor.plainOrSecretEnv" (dict "var" "REACTOR__KAFKA__SASL__USERNAME" "value" .username "secret" .existingSecret "key" .usernameKey) }}
{{- include "reactor.secretEnv" (dict "root" $ "var" "REACTOR__KAFKA__SASL__PASSWORD" "secret" .existingSecret "key" .passwordKey "file" "/etc/reactor/secrets/kafka-sasl/password") }}
{{- end }}
{{- end }}
{{- with .Values.clickhouse }}
- name: REACTOR__CLICKHOUSE__URL
  value: {{ .url | quote }}
{{- include "reactor.plainOrSecretEnv" (dict "var" "REACTOR__CLICKHOUSE__USER" "value" .user "secret" .existingSecret "key" .userKey) }}
{{- if and .existingSecret .passwordKey }}
{{- include "reactor.secretEnv" (dict "root" $ "var" "REACTOR__CLICKHOUSE__PASSWORD" "secret" .existingSecret "key" .passwordKey "file" "/etc/reactor/secrets/clickhouse/password") }}
{{- end }}
{{- if .tls.existingSecret }}
- name: REACTOR__CLICKHOUSE__TLS__CA_FILE
  value: /etc/reactor/tls/clickhouse/ca.crt
{{- end }}
{{- end }}
{{- with .Values.schemaRegistry }}
{{- if .url }}
- name: REACTOR__SCHEMA_REGISTRY__URL
  value: {{ .url | quote }}
{{- include "reactor.plainOrSecretEnv" (dict "var" "REACTOR__SCHEMA_REGISTRY__USERNAME" "value" .username "secret" .existingSecret "key" .usernameKey) }}
{{- if and .existingSecret .passwordKey }}
{{- include "reactor.secretEnv" (dict "root" $ "var" "REACTOR__SCHEMA_REGISTRY__PASSWORD" "secret" .existingSecret "key" .passwordKey "file" "/etc/reactor/secrets/schema-registry/password") }}
{{- end }}
{{- if .tls.existingSecret }}
- name: REACTOR__SCHEMA_REGISTRY__TLS__CA_FILE
  value: /etc/reactor/tls/schema-registry/ca.crt
{{- end }}
{{- end }}
{{- end }}
- name: REACTOR__HTTP__LISTEN
  value: {{ printf "0.0.0.0:%d" (int .Values.containerPort) | quote }}
- name: REACTOR__LOG__FORMAT
  value: {{ .Values.log.format | quote }}
- name: REACTOR__LOG__LEVEL
  value: {{ .Values.log.level | quote }}
{{- end }}

{{/*
The volumes of a Reactor pod: the configuration (ConfigMap `configMap`),
/tmp, and the Secret files. Argument: dict root, configMap.
*/}}
{{- define "reactor.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- range (include "reactor.secretFiles" .root | fromYamlArray) }}
- name: {{ .name }}
  secret:
    secretName: {{ .secret | quote }}
    # Readable by the pod's fsGroup only.
    defaultMode: 0440
    items:
      {{- toYaml .items | nindent 6 }}
{{- end }}
{{- end }}

{{- define "reactor.volumeMounts" -}}
- name: config
  mountPath: /etc/reactor/config.toml
  subPath: config.toml
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- range (include "reactor.secretFiles" . | fromYamlArray) }}
- name: {{ .name }}
  mountPath: {{ .mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The input topics KEDA watches: autoscaling.keda.topics, or the three input
topics of config.topics with Reactor's defaults.
*/}}
{{- define "reactor.inputTopics" -}}
{{- if .Values.autoscaling.keda.topics }}
{{- toYaml .Values.autoscaling.keda.topics }}
{{- else }}
{{- $t := dig "topics" dict .Values.config }}
{{- toYaml (list (get $t "content" | default "content.events") (get $t "engagement" | default "engagement.events") (get $t "conversion" | default "conversion.events")) }}
{{- end }}
{{- end }}

{{/* ------------------------------------------------------------------ */}}
{{/* Validation: values the schema cannot express. Fails rendering.      */}}
{{/* ------------------------------------------------------------------ */}}
{{- define "reactor.validate" -}}
{{- $v := .Values }}
{{- $p := int $v.partitions }}
{{- if gt (int $v.replicaCount) $p }}
{{- fail (printf "replicaCount (%d) is above partitions (%d): a Kafka consumer group gives each partition to one member, so the extra replicas would sit idle. Lower replicaCount or raise partitions (after adding partitions to the input topics)." (int $v.replicaCount) $p) }}
{{- end }}
{{- $keda := $v.autoscaling.keda }}
{{- $hpa := $v.autoscaling.hpa }}
{{- if and $keda.enabled $hpa.enabled }}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are both true: KEDA creates its own HorizontalPodAutoscaler, and two autoscalers on one Deployment fight. Enable one." }}
{{- end }}
{{- if $keda.enabled }}
{{- if gt (int $keda.maxReplicaCount) $p }}
{{- fail (printf "autoscaling.keda.maxReplicaCount (%d) is above partitions (%d): replicas beyond the partition count sit idle." (int $keda.maxReplicaCount) $p) }}
{{- end }}
{{- if gt (int $keda.minReplicaCount) (int $keda.maxReplicaCount) }}
{{- fail (printf "autoscaling.keda.minReplicaCount (%d) is above maxReplicaCount (%d)." (int $keda.minReplicaCount) (int $keda.maxReplicaCount)) }}
{{- end }}
{{- end }}
{{- if $hpa.enabled }}
{{- if gt (int $hpa.maxReplicas) $p }}
{{- fail (printf "autoscaling.hpa.maxReplicas (%d) is above partitions (%d): replicas beyond the partition count sit idle." (int $hpa.maxReplicas) $p) }}
{{- end }}
{{- if gt (int $hpa.minReplicas) (int $hpa.maxReplicas) }}
{{- fail (printf "autoscaling.hpa.minReplicas (%d) is above maxReplicas (%d)." (int $hpa.minReplicas) (int $hpa.maxReplicas)) }}
{{- end }}
{{- end }}
{{- with $v.kafka.tls }}
{{- if and (not .enabled) .existingSecret }}
{{- fail "kafka.tls.existingSecret is set but kafka.tls.enabled is false." }}
{{- end }}
{{- if ne (empty .certKey) (empty .keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mutual TLS needs both the client certificate and its key)." }}
{{- end }}
{{- if and (or .certKey .keyPasswordKey) (not .existingSecret) }}
{{- fail "kafka.tls.certKey/keyPasswordKey need kafka.tls.existingSecret, the Secret that holds them." }}
{{- end }}
{{- if and .existingSecret (not (or .caKey .certKey)) }}
{{- fail "kafka.tls.existingSecret is set but neither kafka.tls.caKey nor kafka.tls.certKey names a key in it." }}
{{- end }}
{{- if and .keyPasswordKey (not .keyKey) }}
{{- fail "kafka.tls.keyPasswordKey is set without kafka.tls.keyKey." }}
{{- end }}
{{- end }}
{{- with $v.kafka.sasl }}
{{- if .mechanism }}
{{- if not .existingSecret }}
{{- fail (printf "kafka.sasl.mechanism is %s but kafka.sasl.existingSecret is empty: create a Secret with the password (kubectl create secret generic ...) and name it there." .mechanism) }}
{{- end }}
{{- if eq (empty .username) (empty .usernameKey) }}
{{- fail "kafka.sasl: set exactly one of username and usernameKey." }}
{{- end }}
{{- else if or .existingSecret .username .usernameKey }}
{{- fail "kafka.sasl has credentials but no mechanism: set kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)." }}
{{- end }}
{{- end }}
{{- with $v.clickhouse }}
{{- if and .userKey (not .existingSecret) }}
{{- fail "clickhouse.userKey needs clickhouse.existingSecret." }}
{{- end }}
{{- if and .tls.existingSecret (not (hasPrefix "https://" .url)) }}
{{- fail (printf "clickhouse.tls.existingSecret is set but clickhouse.url (%s) is not https://." .url) }}
{{- end }}
{{- end }}
{{- with $v.schemaRegistry }}
{{- if .url }}
{{- if and .usernameKey (not .existingSecret) }}
{{- fail "schemaRegistry.usernameKey needs schemaRegistry.existingSecret." }}
{{- end }}
{{- if and .existingSecret (not (or .username .usernameKey)) }}
{{- fail "schemaRegistry.existingSecret is set without schemaRegistry.username or usernameKey (basic authentication needs both)." }}
{{- end }}
{{- if and .username (not .existingSecret) }}
{{- fail "schemaRegistry.username is set without schemaRegistry.existingSecret holding the password." }}
{{- end }}
{{- if and .tls.existingSecret (not (hasPrefix "https://" .url)) }}
{{- fail (printf "schemaRegistry.tls.existingSecret is set but schemaRegistry.url (%s) is not https://." .url) }}
{{- end }}
{{- else if or .username .usernameKey .existingSecret .tls.existingSecret }}
{{- fail "schemaRegistry has credentials or TLS settings but no url." }}
{{- end }}
{{- end }}
{{- /* Settings the chart passes as environment variables: the same key in
       `config` would be silently overridden, so reject it. */}}
{{- $owned := dict
  "kafka.brokers" "kafka.brokers"
  "kafka.group_id" "kafka.groupId"
  "kafka.tls" "kafka.tls"
  "kafka.sasl" "kafka.sasl"
  "kafka.prefetch_kbytes_per_partition" "kafka.prefetchKbytesPerPartition"
  "clickhouse.url" "clickhouse.url"
  "clickhouse.user" "clickhouse.user"
  "clickhouse.password_file" "clickhouse.existingSecret"
  "clickhouse.tls" "clickhouse.tls"
  "schema_registry.url" "schemaRegistry.url"
  "schema_registry.username" "schemaRegistry.username"
  "schema_registry.password_file" "schemaRegistry.existingSecret"
  "schema_registry.tls" "schemaRegistry.tls"
  "http" "containerPort"
  "log" "log" }}
{{- range $key, $instead := $owned }}
{{- $parts := splitList "." $key }}
{{- $section := get $v.config (first $parts) }}
{{- if and (hasKey $v.config (first $parts)) (or (eq (len $parts) 1) (and (kindIs "map" $section) (hasKey $section (last $parts)))) }}
{{- fail (printf "config.%s is managed by the chart; set the value %s instead." $key $instead) }}
{{- end }}
{{- end }}
{{- $names := dict }}
{{- range (include "reactor.env" . | fromYamlArray) }}
{{- $_ := set $names .name true }}
{{- end }}
{{- range $v.env }}
{{- if hasKey $names .name }}
{{- fail (printf "env: %s is already set by the chart from its values; change that value instead (duplicate names make the later one win silently)." .name) }}
{{- end }}
{{- end }}
{{- if and $v.dashboards.enabled (not (.Files.Glob "dashboards/*.json")) }}
{{- fail "dashboards.enabled is true but the chart has no dashboards/*.json." }}
{{- end }}
{{- end }}

{{/*
The container's resources: as given, with an empty memory limit or request
computed from the partitions a pod may read (see values.yaml, resources).
*/}}
{{- define "reactor.resources" -}}
{{- $prefetchMi := div (add .Values.kafka.prefetchKbytesPerPartition 1023) 1024 -}}
{{- $limitMi := add 256 (mul 3 .Values.partitions (add $prefetchMi .Values.memoryPerPartitionMi)) -}}
{{- $resources := deepCopy .Values.resources -}}
{{- $limits := default dict $resources.limits -}}
{{- $requests := default dict $resources.requests -}}
{{- if not $limits.memory -}}
{{- $_ := set $limits "memory" (printf "%dMi" $limitMi) -}}
{{- end -}}
{{- if not $requests.memory -}}
{{- $_ := set $requests "memory" (printf "%dMi" (div $limitMi 2)) -}}
{{- end -}}
{{- $_ := set $resources "limits" $limits -}}
{{- $_ := set $resources "requests" $requests -}}
{{- toYaml $resources -}}
{{- end -}}
