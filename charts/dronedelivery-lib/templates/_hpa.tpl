{{/*
HorizontalPodAutoscaler (autoscaling/v2) on CPU (and memory when a target is set). `behavior`:
scale up at once (no stabilisation, up to `scaleUp.podsPerMinute` pods a minute), scale down only
after `scaleDown.stabilizationWindowSeconds` of lower recommendations and by at most
`scaleDown.percentPerMinute` percent a minute, so a bursty load does not flap.
*/}}
{{- define "dronedelivery-lib.hpa" -}}
{{- $a := .Values.autoscaling | default dict -}}
{{- if $a.enabled -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "dronedelivery-lib.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "dronedelivery-lib.name" . }}
  minReplicas: {{ $a.minReplicas }}
  maxReplicas: {{ $a.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $a.targetCPUUtilizationPercentage }}
    {{- if $a.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $a.targetMemoryUtilizationPercentage }}
    {{- end }}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: {{ $a.scaleUp.stabilizationWindowSeconds }}
      selectPolicy: Max
      policies:
        - type: Pods
          value: {{ $a.scaleUp.podsPerMinute }}
          periodSeconds: 60
        - type: Percent
          value: 100
          periodSeconds: 60
    scaleDown:
      stabilizationWindowSeconds: {{ $a.scaleDown.stabilizationWindowSeconds }}
      selectPolicy: Min
      policies:
        - type: Percent
          value: {{ $a.scaleDown.percentPerMinute }}
          periodSeconds: 60
{{- end -}}
{{- end -}}
