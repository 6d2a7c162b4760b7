{
  "targets": [
    {
      "target_name": "capi_native",
      "sources": ["capi_native.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-ffast-math", "-march=native"],
      "libraries": ["-lopenblas", "-lmvec", "-lm"]
    }
  ]
}
