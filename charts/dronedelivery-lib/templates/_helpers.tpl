{{/*
Names, labels and small helpers shared by every template of the library.

Every resource of a service is named after its chart (`delivery`, `package`, ...), not after the
release: the workflow reaches `http://package.<namespace>.svc`, NetworkPolicies select peers by
`app.kubernetes.io/name`, so the names must not depend on how an operator called the release.
*/}}

{{- define "dronedelivery-lib.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The service's environment-variable prefix: `DELIVERY`, `DRONESCHEDULER`, ... */}}
{{- define "dronedelivery-lib.envPrefix" -}}
{{- .Chart.Name | upper | replace "-" "_" -}}
{{- end -}}

{{- define "dronedelivery-lib.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dronedelivery-lib.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dronedelivery-lib.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- end -}}

{{- define "dronedelivery-lib.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dronedelivery-lib.selectorLabels" . }}
app.kubernetes.io/version: {{ include "dronedelivery-lib.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: dronedelivery
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The labels another service's NetworkPolicy uses to pick this service's pods. */}}
{{- define "dronedelivery-lib.peerLabels" -}}
app.kubernetes.io/name: {{ . }}
app.kubernetes.io/part-of: dronedelivery
{{- end -}}

{{- define "dronedelivery-lib.image" -}}
{{- $image := .Values.image -}}
{{- $repository := $image.repository -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $image.repository -}}
{{- end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (include "dronedelivery-lib.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* The name of the SecretProviderClass and of the Secret the CSI driver syncs from it. */}}
{{- define "dronedelivery-lib.keyVaultName" -}}
{{- printf "%s-kv" (include "dronedelivery-lib.name" .) -}}
{{- end -}}

{{/* "true" when something other than the Deployment owns the replica count (HPA or KEDA). */}}
{{- define "dronedelivery-lib.externallyScaled" -}}
{{- if or (.Values.autoscaling | default dict).enabled (.Values.keda | default dict).enabled -}}
true
{{- end -}}
{{- end -}}

{{/*
The Deployment's `replicas`, or nothing when an autoscaler (HPA or KEDA) owns the count, so that
an upgrade never resets a scaled-out service. One exception: a release that ran with a fixed
count before its autoscaler was enabled. Its previous manifests set `replicas`, and dropping the
field from the manifest resets the Deployment to 1 pod (Helm's three-way merge and server-side
apply both delete a field that the previous revision set), until the autoscaler scales it up
again. Such a Deployment carries the annotation `dronedelivery/replicas-in-manifest` and keeps
rendering the count it runs (looked up in the cluster), held within the autoscaler's bounds.
*/}}
{{- define "dronedelivery-lib.replicas" -}}
{{- $v := .Values -}}
{{- if not (include "dronedelivery-lib.externallyScaled" .) -}}
{{- $v.replicaCount -}}
{{- else -}}
{{- $live := lookup "apps/v1" "Deployment" .Release.Namespace (include "dronedelivery-lib.name" .) -}}
{{- if and $live (dig "metadata" "annotations" "dronedelivery/replicas-in-manifest" "" $live) -}}
{{- $bounds := $v.autoscaling -}}
{{- if ($v.keda | default dict).enabled -}}
{{- $bounds = $v.keda -}}
{{- end -}}
{{- $running := int (dig "spec" "replicas" 1 $live) -}}
{{- max (int $bounds.minReplicas) (min (int $bounds.maxReplicas) $running) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Cross-field checks that a JSON schema cannot express; `helm lint`/`template`/`install` fail with the
message. Rendered (empty) by "dronedelivery-lib.all".
*/}}
{{- define "dronedelivery-lib.validate" -}}
{{- $v := .Values -}}
{{- if and ($v.autoscaling | default dict).enabled ($v.keda | default dict).enabled -}}
{{- fail "autoscaling.enabled and keda.enabled are exclusive: KEDA creates and owns its own HPA" -}}
{{- end -}}
{{- if ($v.autoscaling | default dict).enabled -}}
{{- if gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- end -}}
{{- if ($v.keda | default dict).enabled -}}
{{- if gt (int $v.keda.minReplicas) (int $v.keda.maxReplicas) -}}
{{- fail "keda.minReplicas must not exceed keda.maxReplicas" -}}
{{- end -}}
{{- end -}}
{{- if ge (int $v.lifecycle.preStopSleepSeconds) (int $v.lifecycle.terminationGracePeriodSeconds) -}}
{{- fail "lifecycle.preStopSleepSeconds must be shorter than lifecycle.terminationGracePeriodSeconds (the sleep counts against the grace period)" -}}
{{- end -}}
{{- if and $v.keyVault.enabled (not $v.workloadIdentity.enabled) -}}
{{- fail "keyVault.enabled needs workloadIdentity.enabled: the CSI driver reads Key Vault as the service's identity" -}}
{{- end -}}
{{- if and ($v.route | default dict).enabled (not $v.service.enabled) -}}
{{- fail "route.enabled needs service.enabled: the HTTPRoute sends traffic to the Service" -}}
{{- end -}}
{{- $reserved := list (printf "%s_HOST" (include "dronedelivery-lib.envPrefix" .)) (printf "%s_PORT" (include "dronedelivery-lib.envPrefix" .)) -}}
{{- range $secret := $v.keyVault.secrets -}}
{{- $reserved = append $reserved $secret.env -}}
{{- end -}}
{{- range $name, $_ := $v.env -}}
{{- if has $name $reserved -}}
{{- fail (printf "env.%s is set by the chart (container port, or a Key Vault secret): remove it from env" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
