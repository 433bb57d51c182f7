"""Exporters (TensorFlow only): TFLite today; SavedModel and ONNX to come."""
