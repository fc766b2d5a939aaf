{
  # Builds build/Release/shoal_native.node: the POSIX shared-memory primitives of the
  # planned-restart handoff. One concern per file: native/shm.cc (segments, the module Init that
  # registers every export), native/segment-trust.cc (the trust check of an existing segment),
  # native/file-lock.cc (the data-directory lock), native/crc32c.cc (CRC-32C), native/errors.cc
  # (the errors all of them throw); native/fd.h is header-only. Run by `npm install` / `npm ci`
  # through the root "install" script (node-gyp rebuild, npm's bundled copy); headers come from
  # npm's nodedir, so no download is needed. Linux only (see native/README.md).
  "targets": [
    {
      "target_name": "shoal_native",
      "sources": [
        "native/shm.cc",
        "native/segment-trust.cc",
        "native/file-lock.cc",
        "native/crc32c.cc",
        "native/errors.cc"
      ],
      # node-addon-api's own target: adds its include dir and NAPI_CPP_EXCEPTIONS, and removes
      # -fno-exceptions (errors are thrown as Napi::Error and surface as JS exceptions).
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "conditions": [
        ["OS=='linux'", {
          # shm_open/shm_unlink live in libc since glibc 2.34; -lrt keeps older glibc working.
          "libraries": ["-lrt"]
        }]
      ]
    }
  ]
}
