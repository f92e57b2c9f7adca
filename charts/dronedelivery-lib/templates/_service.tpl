{{/* ClusterIP Service: port `service.port` (80) to the container's `http` port (8080). */}}
{{- define "dronedelivery-lib.service" -}}
{{- if .Values.service.enabled -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "dronedelivery-lib.name" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "dronedelivery-lib.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "dronedelivery-lib.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      appProtocol: http
{{- end -}}
{{- end -}}
