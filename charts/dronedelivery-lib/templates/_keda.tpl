{{/*
KEDA ScaledObject + TriggerAuthentication for a queue consumer (the workflow). KEDA creates and
owns the HPA (`keda-hpa-<service>`), so the chart renders no HPA of its own. The scaler reads the
queue's active message count as the workload identity `keda.identityId` (default: the service's
client id), which needs a federated credential for KEDA's operator ServiceAccount and the
"Azure Service Bus Data Owner" role on the queue (the scaler reads runtime properties).
Desired replicas = ceil(active messages / messageCount), between minReplicas and maxReplicas.
When the scaler fails `fallback.failureThreshold` times in a row KEDA holds `fallback.replicas`.
*/}}
{{/*
The Service Bus namespace *name* KEDA needs: `keda.serviceBusNamespace`, or else the host name of
`<PREFIX>_QUEUE__SERVICEBUS_NAMESPACE` without `.servicebus.windows.net` (one source of truth).
*/}}
{{- define "dronedelivery-lib.kedaServiceBusNamespace" -}}
{{- $k := .Values.keda -}}
{{- if $k.serviceBusNamespace -}}
{{- $k.serviceBusNamespace -}}
{{- else -}}
{{- $key := printf "%s_QUEUE__SERVICEBUS_NAMESPACE" (include "dronedelivery-lib.envPrefix" .) -}}
{{- (index .Values.env $key | default "" | toString) | trimSuffix "/" | trimPrefix "https://" | trimPrefix "sb://" | trimSuffix ".servicebus.windows.net" -}}
{{- end -}}
{{- end -}}

{{- define "dronedelivery-lib.keda" -}}
{{- $k := .Values.keda | default dict -}}
{{- if $k.enabled -}}
{{- $name := include "dronedelivery-lib.name" . -}}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicaCount: {{ $k.minReplicas }}
  maxReplicaCount: {{ $k.maxReplicas }}
  pollingInterval: {{ $k.pollingInterval }}
  cooldownPeriod: {{ $k.cooldownPeriod }}
  fallback:
    failureThreshold: {{ $k.fallback.failureThreshold }}
    replicas: {{ $k.fallback.replicas }}
  advanced:
    horizontalPodAutoscalerConfig:
      name: keda-hpa-{{ $name }}
      behavior:
        scaleDown:
          stabilizationWindowSeconds: {{ $k.scaleDown.stabilizationWindowSeconds }}
          policies:
            - type: Percent
              value: {{ $k.scaleDown.percentPerMinute }}
              periodSeconds: 60
  triggers:
    - type: azure-servicebus
      name: {{ $k.queueName }}
      metadata:
        namespace: {{ include "dronedelivery-lib.kedaServiceBusNamespace" . | required (printf "keda: no Service Bus namespace (set env.%s_QUEUE__SERVICEBUS_NAMESPACE or keda.serviceBusNamespace)" (include "dronedelivery-lib.envPrefix" .)) | quote }}
        queueName: {{ $k.queueName | quote }}
        messageCount: {{ $k.messageCount | toString | quote }}
        activationMessageCount: {{ $k.activationMessageCount | toString | quote }}
      authenticationRef:
        name: {{ $name }}-keda
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: {{ $name }}-keda
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  podIdentity:
    provider: azure-workload
    identityId: {{ $k.identityId | default .Values.workloadIdentity.clientId | quote }}
{{- end -}}
{{- end -}}
