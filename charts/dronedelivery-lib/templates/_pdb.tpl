{{/*
PodDisruptionBudget (policy/v1): at most `pdb.maxUnavailable` pods evicted at a time during node
drains and upgrades. `AlwaysAllow` lets a drain evict pods that are not ready anyway (a crash-looping
pod must not block a node upgrade).
*/}}
{{- define "dronedelivery-lib.pdb" -}}
{{- if .Values.pdb.enabled -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "dronedelivery-lib.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .Values.pdb.maxUnavailable }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      {{- include "dronedelivery-lib.selectorLabels" . | nindent 6 }}
{{- end -}}
{{- end -}}
