{{/* Names and labels. */}}
{{- define "zdgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zdgate.fullname" -}}
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

{{- define "zdgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zdgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zdgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zdgate.labels" -}}
helm.sh/chart: {{ include "zdgate.chart" . }}
{{ include "zdgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zdgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zdgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "zdgate.image" -}}
{{- $tag := default .Chart.AppVersion (toString (.Values.image.tag | default "")) }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
zdgate.secrets: the secrets zdgate gets, as JSON {"items": [...]} (use with fromJson). Each item:
  flag:       the flag's name; zdgate gets --<flag>-file=<mountPath>/<flag>
  secretName: the Kubernetes Secret holding it (the chart's own, or existingSecret.name)
  secretKey:  the key in that Secret
  chart:      true when the chart's Secret holds it
Order is fixed, so the rendered args and volume are stable.
*/}}
{{- define "zdgate.secrets" -}}
{{- $flags := dict "cookieSecret" "cookie-secret" "oidcClientSecret" "oidc-client-secret" "zendeskMessagingSecret" "zendesk-messaging-secret" "zendeskChatSecret" "zendesk-chat-secret" "zendeskSsoSecret" "zendesk-sso-secret" "zendeskSdkSecret" "zendesk-sdk-secret" "zendeskSsoStaffSecret" "zendesk-sso-staff-secret" "redisUrl" "redis-url" }}
{{- $items := list }}
{{- range $key := list "cookieSecret" "oidcClientSecret" "zendeskMessagingSecret" "zendeskChatSecret" "zendeskSsoSecret" "zendeskSdkSecret" "zendeskSsoStaffSecret" "redisUrl" }}
{{- $s := index $.Values.secrets $key }}
{{- $flag := index $flags $key }}
{{- $existing := $s.existingSecret | default dict }}
{{- if and $s.value $existing.name }}
{{- fail (printf "secrets.%s: set either value or existingSecret.name, not both" $key) }}
{{- end }}
{{- if $existing.name }}
{{- $items = append $items (dict "flag" $flag "secretName" $existing.name "secretKey" (default $flag $existing.key) "chart" false) }}
{{- else if or $s.value (eq $key "cookieSecret") }}
{{- $items = append $items (dict "flag" $flag "secretName" (include "zdgate.fullname" $) "secretKey" $flag "chart" true) }}
{{- end }}
{{- end }}
{{- dict "items" $items | toJson }}
{{- end }}

{{/*
zdgate.providerSecrets: the client secrets of the providers items, as JSON {"items": [...]}: id,
file (oidc-client-secret-<id>, under secrets.mountPath), secretName, secretKey, and chart (the
chart's own Secret holds it). In the order of secrets.providerClientSecrets' keys.
*/}}
{{- define "zdgate.providerSecrets" -}}
{{- $items := list }}
{{- range $id, $s := .Values.secrets.providerClientSecrets }}
{{- $existing := $s.existingSecret | default dict }}
{{- $file := printf "oidc-client-secret-%s" $id }}
{{- if and $s.value $existing.name }}
{{- fail (printf "secrets.providerClientSecrets.%s: set either value or existingSecret.name, not both" $id) }}
{{- end }}
{{- if $existing.name }}
{{- $items = append $items (dict "id" $id "file" $file "secretName" $existing.name "secretKey" (default $file $existing.key) "chart" false) }}
{{- else if $s.value }}
{{- $items = append $items (dict "id" $id "file" $file "secretName" (include "zdgate.fullname" $) "secretKey" $file "chart" true) }}
{{- end }}
{{- end }}
{{- dict "items" $items | toJson }}
{{- end }}

{{/* zdgate.configFile: zdgate's --config file with the providers list, client secrets as files. */}}
{{- define "zdgate.configFile" -}}
{{- $secrets := dict }}
{{- range (include "zdgate.providerSecrets" . | fromJson).items }}
{{- $_ := set $secrets .id (printf "%s/%s" (trimSuffix "/" $.Values.secrets.mountPath) .file) }}
{{- end }}
{{- $items := list }}
{{- range $i, $p := .Values.providers }}
{{- $item := deepCopy $p }}
{{- if hasKey $secrets $p.id }}
{{- $_ := set $item "oidc-client-secret-file" (get $secrets $p.id) }}
{{- end }}
{{- $items = append $items $item }}
{{- end }}
{{- dict "providers" $items | toYaml }}
{{- end }}

{{/* zdgate.upstream: --upstream, derived from the mode; fails with a clear message when missing. */}}
{{- define "zdgate.upstream" -}}
{{- if eq .Values.mode "sidecar" }}
{{- printf "http://127.0.0.1:%d" (int .Values.app.port) }}
{{- else }}
{{- required "upstream is required in standalone mode, e.g. --set upstream=http://my-app.my-namespace.svc.cluster.local:8080 (or use mode=sidecar)" .Values.upstream }}
{{- end }}
{{- end }}

{{/* zdgate.validate: cross-field checks the schema cannot express; renders nothing. */}}
{{- define "zdgate.validate" -}}
{{- $ports := list (int .Values.containerPorts.http) (int .Values.containerPorts.metrics) }}
{{- if eq (index $ports 0) (index $ports 1) }}
{{- fail "containerPorts.http and containerPorts.metrics must differ" }}
{{- end }}
{{- if eq .Values.mode "sidecar" }}
{{- if .Values.upstream }}
{{- fail "upstream must be empty in sidecar mode: zdgate always proxies to http://127.0.0.1:<app.port>" }}
{{- end }}
{{- $_ := required "app.image.repository is required in sidecar mode" .Values.app.image.repository }}
{{- $_ = required "app.image.tag is required in sidecar mode" .Values.app.image.tag }}
{{- $_ = required "app.port is required in sidecar mode" .Values.app.port }}
{{- if has (int .Values.app.port) $ports }}
{{- fail (printf "app.port %d collides with zdgate's containerPorts; change one of them" (int .Values.app.port)) }}
{{- end }}
{{- else if .Values.app.image.repository }}
{{- fail "app.* is only used with mode=sidecar; set mode=sidecar, or drop app.image.repository" }}
{{- end }}
{{- $store := default "cookie" (index .Values.config "session-store") }}
{{- $redisPlain := index .Values.config "redis-url" }}
{{- $redisSecret := or .Values.secrets.redisUrl.value .Values.secrets.redisUrl.existingSecret.name }}
{{- if and $redisPlain $redisSecret }}
{{- fail "set config.redis-url or secrets.redisUrl, not both" }}
{{- end }}
{{- if and (eq $store "redis") (not (or $redisPlain $redisSecret)) }}
{{- fail "config.session-store=redis needs config.redis-url (no password) or secrets.redisUrl" }}
{{- end }}
{{- if .Values.providers }}
{{- if or (index .Values.config "oidc-issuer") (index .Values.config "oidc-client-id") .Values.secrets.oidcClientSecret.value .Values.secrets.oidcClientSecret.existingSecret.name }}
{{- fail "providers replaces config.oidc-issuer, config.oidc-client-id and secrets.oidcClientSecret: set each provider's in its item and in secrets.providerClientSecrets.<id>" }}
{{- end }}
{{- $ids := list }}
{{- range .Values.providers }}
{{- $ids = append $ids .id }}
{{- end }}
{{- range $id, $_ := .Values.secrets.providerClientSecrets }}
{{- if not (has $id $ids) }}
{{- fail (printf "secrets.providerClientSecrets.%s: no providers item has id %s" $id $id) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* zdgate.args: the zdgate container's arguments (subcommand first: the image's CMD is replaced). */}}
{{- define "zdgate.args" -}}
- serve
- {{ printf "--listen=:%d" (int .Values.containerPorts.http) | toJson }}
- {{ printf "--metrics-listen=:%d" (int .Values.containerPorts.metrics) | toJson }}
- {{ printf "--upstream=%s" (include "zdgate.upstream" .) | toJson }}
{{- if .Values.providers }}
- "--config=/etc/zdgate/config/config.yaml"
{{- end }}
{{- range $flag, $value := .Values.config }}
{{- if kindIs "slice" $value }}
{{- range $value }}
- {{ printf "--%s=%v" $flag . | toJson }}
{{- end }}
{{- else if kindIs "bool" $value }}
- {{ printf "--%s=%t" $flag $value | toJson }}
{{- else if and (not (kindIs "invalid" $value)) (ne (toString $value) "") }}
- {{ printf "--%s=%v" $flag $value | toJson }}
{{- end }}
{{- end }}
{{- range (include "zdgate.secrets" . | fromJson).items }}
- {{ printf "--%s-file=%s/%s" .flag (trimSuffix "/" $.Values.secrets.mountPath) .flag | toJson }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ toJson . }}
{{- end }}
{{- end }}

{{/* zdgate.container: the zdgate container (restartPolicy is added by the caller in sidecar mode). */}}
{{- define "zdgate.container" -}}
name: zdgate
image: {{ include "zdgate.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  {{- include "zdgate.args" . | nindent 2 }}
{{- with .Values.extraEnv }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
ports:
  - name: http
    containerPort: {{ int .Values.containerPorts.http }}
    protocol: TCP
  - name: metrics
    containerPort: {{ int .Values.containerPorts.metrics }}
    protocol: TCP
{{- with .Values.startupProbe }}
{{- if .enabled }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
  {{- include "zdgate.probeTiming" . | trim | nindent 2 }}
{{- end }}
{{- end }}
{{- with .Values.livenessProbe }}
{{- if .enabled }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
  {{- include "zdgate.probeTiming" . | trim | nindent 2 }}
{{- end }}
{{- end }}
{{- with .Values.readinessProbe }}
{{- if .enabled }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
  {{- include "zdgate.probeTiming" . | trim | nindent 2 }}
{{- end }}
{{- end }}
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: secrets
    mountPath: {{ .Values.secrets.mountPath | quote }}
    readOnly: true
  {{- if .Values.providers }}
  - name: config
    mountPath: /etc/zdgate/config
    readOnly: true
  {{- end }}
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "zdgate.probeTiming" -}}
{{- range $k := list "initialDelaySeconds" "periodSeconds" "timeoutSeconds" "failureThreshold" "successThreshold" }}
{{- if hasKey $ $k }}
{{ $k }}: {{ int (index $ $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/* zdgate.appContainer: the protected app in sidecar mode. */}}
{{- define "zdgate.appContainer" -}}
{{- with .Values.app }}
name: {{ .name }}
image: {{ printf "%s:%s" .image.repository (toString .image.tag) | quote }}
imagePullPolicy: {{ .image.pullPolicy }}
{{- with .command }}
command:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .args }}
args:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .startupProbe }}
startupProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .livenessProbe }}
livenessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .readinessProbe }}
readinessProbe:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .volumeMounts }}
volumeMounts:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* zdgate.minReplicas: the fewest replicas that run (for the PodDisruptionBudget). */}}
{{- define "zdgate.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}
{{- int .Values.autoscaling.minReplicas }}
{{- else }}
{{- int .Values.replicaCount }}
{{- end }}
{{- end }}
