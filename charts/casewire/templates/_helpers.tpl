{{/*
Names and labels.
*/}}
{{- define "casewire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "casewire.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of a component's resources: <fullname>-<component>. */}}
{{- define "casewire.componentName" -}}
{{- printf "%s-%s" (include "casewire.fullname" .root) .component -}}
{{- end -}}

{{- define "casewire.selectorLabels" -}}
app.kubernetes.io/name: {{ include "casewire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "casewire.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "casewire.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: casewire
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of one component; dict root, component. */}}
{{- define "casewire.componentLabels" -}}
{{ include "casewire.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "casewire.componentSelectorLabels" -}}
{{ include "casewire.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "casewire.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "casewire.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "casewire.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The services, from what the code does (services/casewire/src/main.rs):
  name      the `casewire serve` argument and the component label
  listen    the port it serves besides the management port: api, ws or none
  stores    whether it opens the stores and the bus (Platform::open)
  client    a client of the Case API with a service account (task-worker,
            email-ingest): no stores, the management port optional
  singleton one pod, replaced rather than rolled
  egress    what it must reach (see networkPolicy.egress)
*/}}
{{- define "casewire.components" -}}
caseApi:
  name: case-api
  listen: api
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb, s3, oidc, opa]
portal:
  name: portal
  listen: api
  stores: false
  client: false
  singleton: false
  egress: [api, oidc]
storageApi:
  name: storage-api
  listen: api
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb, s3, oidc, opa]
caseEngine:
  name: case-engine
  listen: none
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb]
projector:
  name: projector
  listen: none
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb]
wsPublisher:
  name: ws-publisher
  listen: ws
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb, oidc, opa]
notifyPublisher:
  name: notify-publisher
  listen: none
  stores: true
  client: false
  singleton: true
  egress: [kafka, mongodb, s3, smtp, webhooks, opa]
automation:
  name: automation
  listen: none
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb]
slaScheduler:
  name: sla-scheduler
  listen: none
  stores: true
  client: false
  singleton: false
  egress: [kafka, mongodb]
taskWorker:
  name: task-worker
  listen: none
  stores: false
  client: true
  singleton: false
  egress: [api, oidc, smtp, httpTargets]
emailIngest:
  name: email-ingest
  listen: none
  stores: false
  client: true
  singleton: true
  egress: [api, oidc, imap]
{{- end -}}

{{/* Whether a component serves the management port; dict comp, values. */}}
{{- define "casewire.servesManagement" -}}
{{- if or (not .comp.client) .values.managementPort -}}true{{- end -}}
{{- end -}}

{{/*
TOML and figment values. Helm reads numbers as float64, and its toToml
writes 30 as 30.0, which Casewire's u64 fields refuse; these helpers write
integral numbers as integers. Nulls are left out (the binary's default).
"casewire.inline" is also figment's environment syntax ({key = value},
[a, b], "strings"), used where an environment variable carries a table.
*/}}
{{- define "casewire.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{- . -}}{{- else -}}{{- toRawJson . -}}{{- end -}}
{{- end -}}

{{- define "casewire.inline" -}}
{{- if kindIs "map" . -}}
{{- $parts := list -}}
{{- range $k, $v := . -}}
{{- if not (kindIs "invalid" $v) -}}
{{- $parts = append $parts (printf "%s = %s" (include "casewire.tomlKey" $k) (include "casewire.inline" $v)) -}}
{{- end -}}
{{- end -}}
{{- printf "{%s}" (join ", " $parts) -}}
{{- else if kindIs "slice" . -}}
{{- $parts := list -}}
{{- range . -}}
{{- $parts = append $parts (include "casewire.inline" .) -}}
{{- end -}}
{{- printf "[%s]" (join ", " $parts) -}}
{{- else if kindIs "string" . -}}
{{- toRawJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (int64 .)) (float64 .) -}}{{- printf "%d" (int64 .) -}}{{- else -}}{{- toString . -}}{{- end -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{- define "casewire.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) -}}
{{- $all := true -}}
{{- range . -}}{{- if not (kindIs "map" .) -}}{{- $all = false -}}{{- end -}}{{- end -}}
{{- if $all -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* A TOML table; dict path (the header, "" at the top), table. */}}
{{- define "casewire.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{- range $k, $v := $table -}}
{{- if and (not (kindIs "invalid" $v)) (not (kindIs "map" $v)) (not (include "casewire.isTableArray" $v)) }}
{{ include "casewire.tomlKey" $k }} = {{ include "casewire.inline" $v }}
{{- end -}}
{{- end -}}
{{- range $k, $v := $table -}}
{{- if kindIs "map" $v -}}
{{- $sub := include "casewire.tomlKey" $k -}}
{{- if $path -}}{{- $sub = printf "%s.%s" $path $sub -}}{{- end }}

[{{ $sub }}]
{{- include "casewire.tomlTable" (dict "path" $sub "table" $v) -}}
{{- end -}}
{{- end -}}
{{- range $k, $v := $table -}}
{{- if include "casewire.isTableArray" $v -}}
{{- $sub := include "casewire.tomlKey" $k -}}
{{- if $path -}}{{- $sub = printf "%s.%s" $path $sub -}}{{- end -}}
{{- range $item := $v }}

[[{{ $sub }}]]
{{- range $ik, $iv := $item -}}
{{- if not (kindIs "invalid" $iv) }}
{{ include "casewire.tomlKey" $ik }} = {{ include "casewire.inline" $iv }}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The host clients use: the Ingress's, else the HTTPRoute's first. */}}
{{- define "casewire.publicHost" -}}
{{- if .Values.ingress.enabled -}}
{{- .Values.ingress.host -}}
{{- else if and .Values.httpRoute.enabled .Values.httpRoute.hostnames -}}
{{- first .Values.httpRoute.hostnames -}}
{{- end -}}
{{- end -}}

{{- define "casewire.publicTls" -}}
{{- if or (and .Values.ingress.enabled .Values.ingress.tlsSecretName) (and (not .Values.ingress.enabled) .Values.httpRoute.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The case API inside the cluster. */}}
{{- define "casewire.internalApiUrl" -}}
{{- printf "http://%s:%d" (include "casewire.componentName" (dict "root" . "component" "case-api")) (int .Values.ports.api) -}}
{{- end -}}

{{- define "casewire.apiPublicUrl" -}}
{{- if .Values.config.api.public_url -}}
{{- .Values.config.api.public_url -}}
{{- else if include "casewire.publicHost" . -}}
{{- printf "%s://%s" (ternary "https" "http" (eq (include "casewire.publicTls" .) "true")) (include "casewire.publicHost" .) -}}
{{- else -}}
{{- include "casewire.internalApiUrl" . -}}
{{- end -}}
{{- end -}}

{{- define "casewire.wsPublicUrl" -}}
{{- if .Values.config.ws.public_url -}}
{{- .Values.config.ws.public_url -}}
{{- else if include "casewire.publicHost" . -}}
{{- printf "%s://%s" (ternary "wss" "ws" (eq (include "casewire.publicTls" .) "true")) (include "casewire.publicHost" .) -}}
{{- else -}}
{{- printf "ws://%s:%d" (include "casewire.componentName" (dict "root" . "component" "ws-publisher")) (int .Values.ports.ws) -}}
{{- end -}}
{{- end -}}

{{/* storage.url from s3 (no credentials: those come from secrets.s3). */}}
{{- define "casewire.storageUrl" -}}
{{- $s3 := .Values.s3 -}}
{{- $q := list (printf "region=%s" (urlquery $s3.region)) -}}
{{- with $s3.endpoint -}}{{- $q = append $q (printf "endpoint=%s" (urlquery .)) -}}{{- end -}}
{{- with $s3.publicEndpoint -}}{{- $q = append $q (printf "public_endpoint=%s" (urlquery .)) -}}{{- end -}}
{{- if $s3.pathStyle -}}{{- $q = append $q "path_style=true" -}}{{- end -}}
{{- with $s3.prefix -}}{{- $q = append $q (printf "prefix=%s" (urlquery .)) -}}{{- end -}}
{{- if $s3.tenantBuckets -}}{{- $q = append $q "tenant_buckets=true" -}}{{- end -}}
{{- printf "s3://%s?%s" $s3.bucket (join "&" $q) -}}
{{- end -}}

{{/* The whole casewire.toml. */}}
{{- define "casewire.configToml" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "mode" "production" -}}
{{- $_ := set $cfg "data_dir" "/var/lib/casewire" -}}
{{- $api := default (dict) $cfg.api -}}
{{- $_ := set $api "bind" (printf "0.0.0.0:%d" (int .Values.ports.api)) -}}
{{- $_ := set $api "public_url" (include "casewire.apiPublicUrl" .) -}}
{{- $_ := set $cfg "api" $api -}}
{{- $_ := set $cfg "management" (dict "bind" (printf "0.0.0.0:%d" (int .Values.ports.management))) -}}
{{- $ws := default (dict) $cfg.ws -}}
{{- $_ := set $ws "bind" (printf "0.0.0.0:%d" (int .Values.ports.ws)) -}}
{{- $_ := set $ws "public_url" (include "casewire.wsPublicUrl" .) -}}
{{- $_ := set $cfg "ws" $ws -}}
{{- $auth := default (dict) $cfg.auth -}}
{{- $_ := set $auth "dev_issuer" false -}}
{{- $_ := set $cfg "auth" $auth -}}
{{- $bus := default (dict) $cfg.bus -}}
{{- $_ := set $bus "url" (printf "kafka://%s" (join "," .Values.kafka.brokers)) -}}
{{- $_ := set $cfg "bus" $bus -}}
{{- if .Values.portal.enabled -}}
{{- /* The portal runs apart (casewire serve portal): the API stops serving it. */ -}}
{{- $portal := default (dict) $cfg.portal -}}
{{- $_ := set $portal "enabled" false -}}
{{- $_ := set $cfg "portal" $portal -}}
{{- end -}}
{{- $sa := default (dict) (get $cfg "service_account") -}}
{{- if not $sa.api_url -}}{{- $_ := set $sa "api_url" (include "casewire.internalApiUrl" .) -}}{{- end -}}
{{- $_ := set $cfg "service_account" $sa -}}
{{- if .Values.s3.bucket -}}
{{- $storage := default (dict) $cfg.storage -}}
{{- $_ := set $storage "url" (include "casewire.storageUrl" .) -}}
{{- $_ := set $cfg "storage" $storage -}}
{{- end -}}
{{- if .Values.policies.configMap -}}
{{- $policy := default (dict) $cfg.policy -}}
{{- $_ := set $policy "dir" "/etc/casewire/policies" -}}
{{- $_ := set $cfg "policy" $policy -}}
{{- end -}}
# casewire.toml, rendered by the Helm chart from .Values.config. Credentials
# are not here: they come from Secrets as CASEWIRE__SECTION__FIELD variables.
{{- include "casewire.tomlTable" (dict "path" "" "table" $cfg) }}
{{ end -}}

{{/* A secretKeyRef env entry; dict name, secret, key. */}}
{{- define "casewire.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret | quote }}
      key: {{ .key | quote }}
{{- end -}}

{{/*
The environment of a container; dict root, comp (a casewire.components
entry, or {name: admin-init, stores: true, client: false}), extra.
Secrets only ever arrive through secretKeyRef; the two variables that hold
a table (bus.properties, email.mailboxes) reference them as $(VAR).
*/}}
{{- define "casewire.env" -}}
{{- $root := .root -}}
{{- $comp := .comp -}}
{{- $s := $root.Values.secrets -}}
- name: CASEWIRE_CONFIG
  value: /etc/casewire/config/casewire.toml
{{- if $comp.stores }}
{{- if $s.mongodb.existingSecret }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__STORE__EVENTS" "secret" $s.mongodb.existingSecret "key" $s.mongodb.urlKey) }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__STORE__READ" "secret" $s.mongodb.existingSecret "key" (default $s.mongodb.urlKey $s.mongodb.readUrlKey)) }}
{{- end }}
{{- if $s.kafka.existingSecret }}
{{ include "casewire.secretEnv" (dict "name" "CW_KAFKA_SASL_USERNAME" "secret" $s.kafka.existingSecret "key" $s.kafka.usernameKey) }}
{{ include "casewire.secretEnv" (dict "name" "CW_KAFKA_SASL_PASSWORD" "secret" $s.kafka.existingSecret "key" $s.kafka.passwordKey) }}
- name: CASEWIRE__BUS__PROPERTIES
  value: {{ `{"sasl.username" = "$(CW_KAFKA_SASL_USERNAME)", "sasl.password" = "$(CW_KAFKA_SASL_PASSWORD)"}` | quote }}
{{- end }}
{{- if and $s.s3.existingSecret (has $comp.name (list "case-api" "storage-api" "notify-publisher" "admin-init")) }}
{{ include "casewire.secretEnv" (dict "name" "AWS_ACCESS_KEY_ID" "secret" $s.s3.existingSecret "key" $s.s3.accessKeyIdKey) }}
{{ include "casewire.secretEnv" (dict "name" "AWS_SECRET_ACCESS_KEY" "secret" $s.s3.existingSecret "key" $s.s3.secretAccessKeyKey) }}
{{- end }}
{{- end }}
{{- if eq $comp.name "portal" }}
- name: CASEWIRE__PORTAL__API_URL
  value: {{ include "casewire.internalApiUrl" $root | quote }}
{{- end }}
{{- /* The portal's client secret goes to whichever process serves the portal. */}}
{{- $portalHost := ternary "portal" "case-api" $root.Values.portal.enabled }}
{{- if and (eq $comp.name $portalHost) $s.oidc.existingSecret $s.oidc.portalClientSecretKey }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__PORTAL__CLIENT_SECRET" "secret" $s.oidc.existingSecret "key" $s.oidc.portalClientSecretKey) }}
{{- end }}
{{- if $comp.client }}
{{- if and $s.oidc.existingSecret $s.oidc.serviceAccountClientSecretKey }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__SERVICE_ACCOUNT__CLIENT_SECRET" "secret" $s.oidc.existingSecret "key" $s.oidc.serviceAccountClientSecretKey) }}
{{- end }}
{{- end }}
{{- if and $s.smtp.existingSecret (has $comp.name (list "notify-publisher" "task-worker")) }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__NOTIFY__SMTP_URL" "secret" $s.smtp.existingSecret "key" $s.smtp.urlKey) }}
{{- end }}
{{- if and $s.taskWorkerHttp.existingSecret (eq $comp.name "task-worker") }}
{{ include "casewire.secretEnv" (dict "name" "CASEWIRE__TASK_WORKER__HTTP_SECRET" "secret" $s.taskWorkerHttp.existingSecret "key" $s.taskWorkerHttp.secretKey) }}
{{- end }}
{{- if and $s.imap.existingSecret (eq $comp.name "email-ingest") $root.Values.config.email.mailboxes }}
{{- $boxes := list }}
{{- range $i, $m := $root.Values.config.email.mailboxes }}
{{- $box := deepCopy $m }}
{{- if hasKey $s.imap.urlKeys $m.name }}
{{ include "casewire.secretEnv" (dict "name" (printf "CW_IMAP_URL_%d" $i) "secret" $s.imap.existingSecret "key" (get $s.imap.urlKeys $m.name)) }}
{{- $_ := set $box "imap_url" (printf "$(CW_IMAP_URL_%d)" $i) }}
{{- end }}
{{- $boxes = append $boxes $box }}
{{- end }}
- name: CASEWIRE__EMAIL__MAILBOXES
  value: {{ include "casewire.inline" $boxes | toRawJson }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The hardened container securityContext (not switchable). */}}
{{- define "casewire.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "casewire.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Volumes of a Casewire container; dict root, stores, configMap. */}}
{{- define "casewire.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
    items:
      - key: casewire.toml
        path: casewire.toml
- name: data
{{- if and .stores .root.Values.dataDir.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ .root.Values.dataDir.existingClaim }}
{{- else }}
  emptyDir:
    sizeLimit: {{ .root.Values.dataDir.sizeLimit }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if .root.Values.policies.configMap }}
- name: policies
  configMap:
    name: {{ .root.Values.policies.configMap }}
{{- end }}
{{- end -}}

{{- define "casewire.volumeMounts" -}}
- name: config
  mountPath: /etc/casewire/config
  readOnly: true
- name: data
  mountPath: /var/lib/casewire
- name: tmp
  mountPath: /tmp
{{- if .Values.policies.configMap }}
- name: policies
  mountPath: /etc/casewire/policies
  readOnly: true
{{- end }}
{{- end -}}

{{/* NetworkPolicy peers and ports of one dependency; dict root, dep. */}}
{{- define "casewire.egressRule" -}}
{{- $e := get .root.Values.networkPolicy.egress .dep -}}
- ports:
  {{- range $e.ports }}
    - protocol: TCP
      port: {{ . }}
  {{- end }}
  {{- with $e.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
