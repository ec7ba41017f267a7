"""Extension declaration for fastconv.

One Cython boundary (fastconv/_kernels.pyx) linked with the C kernels in
csrc/.  Files named *_avx2.c are compiled with their own ISA flags (AVX2 +
FMA), files named *_avx512.c with AVX-512 F/BW/VL (+ AVX2/FMA) flags, and
chosen at run time; everything else is built for the baseline ISA.  The
AVX-512 files are only built together with the AVX2 ones (the AVX-512 path
falls back to the AVX2 kernels for what it does not specialise).

Environment variables:
  FASTCONV_NO_OPENMP=1        build without OpenMP
  FASTCONV_SANITIZE=address,undefined   build with sanitizers (tests/CI)
  FASTCONV_NATIVE=1           opt-in -march=native (never the default)
  FASTCONV_NO_AVX512=1        do not build the AVX-512 kernels
"""
import glob
import os
import platform
import shutil
import subprocess
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
AVX2_FLAGS = ["-mavx2", "-mfma"]
AVX512_FLAGS = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]
# the probe uses a masked intrinsic so a compiler that takes the flags but
# lacks the intrinsics (old headers) is rejected too
AVX512_PROBE = ("#include <immintrin.h>\nint main(void){__m512 a=_mm512_set1_ps(1.f);"
                "a=_mm512_maskz_fmadd_ps((__mmask16)3,a,a,a);return (int)_mm512_reduce_add_ps(a)-4;}\n")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "no", "false", "off")


def _compiler_accepts(cc, flags, code="int main(void){return 0;}\n"):
    """Compile and link a tiny program with ``flags``; True if it works."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(code)
        cmd = [cc, src, "-o", os.path.join(tmp, "probe")] + flags
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """Per-file ISA flags, an OpenMP probe and optional sanitizers."""

    def build_extensions(self):
        cc = self.compiler.compiler_so[0] if hasattr(self.compiler, "compiler_so") else "cc"
        gnu_like = self.compiler.compiler_type == "unix"
        base = ["-O3", "-fno-strict-aliasing"] if gnu_like else []
        link = []
        omp_code = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel\n{n=omp_get_num_threads();}\nreturn n<1;}\n"
        use_omp = gnu_like and not _env_flag("FASTCONV_NO_OPENMP") and _compiler_accepts(cc, ["-fopenmp"], omp_code)
        if use_omp:
            base.append("-fopenmp")
            link.append("-fopenmp")
        sanitize = os.environ.get("FASTCONV_SANITIZE", "").strip()
        if sanitize and gnu_like:
            san = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer", "-g", "-O1"]
            base = [f for f in base if f != "-O3"] + san
            link += ["-fsanitize=" + sanitize]
        if _env_flag("FASTCONV_NATIVE") and gnu_like:
            base.append("-march=native")
        build_flags = " ".join(base) or "default"
        avx2 = X86 and gnu_like and _compiler_accepts(cc, AVX2_FLAGS)
        avx512 = avx2 and not _env_flag("FASTCONV_NO_AVX512") and _compiler_accepts(cc, AVX512_FLAGS, AVX512_PROBE)
        for ext in self.extensions:
            ext.extra_compile_args = list(base)
            ext.extra_link_args = list(link)
            ext.define_macros.append(("FC_BUILD_FLAGS", '"%s"' % build_flags))
            isa_sources = [s for s in ext.sources if s.endswith("_avx2.c")]
            avx512_sources = [s for s in ext.sources if s.endswith("_avx512.c")]
            ext.sources = [s for s in ext.sources if not s.endswith(("_avx2.c", "_avx512.c"))]
            if avx2 and isa_sources:
                ext.define_macros.append(("FC_WITH_AVX2", "1"))
                if avx512 and avx512_sources:
                    ext.define_macros.append(("FC_WITH_AVX512", "1"))
                objs = self.compiler.compile(
                    isa_sources, output_dir=self.build_temp, macros=ext.define_macros,
                    include_dirs=ext.include_dirs, extra_postargs=base + AVX2_FLAGS,
                    depends=ext.depends)
                if avx512 and avx512_sources:
                    objs += self.compiler.compile(
                        avx512_sources, output_dir=self.build_temp, macros=ext.define_macros,
                        include_dirs=ext.include_dirs, extra_postargs=base + AVX512_FLAGS,
                        depends=ext.depends)
                ext.extra_objects = list(ext.extra_objects or []) + objs
                # relink when only an ISA source changed (they left ext.sources)
                ext.depends = list(ext.depends) + isa_sources + avx512_sources
        super().build_extensions()


csources = sorted(glob.glob(os.path.join("csrc", "*.c")))
extensions = [
    Extension(
        "fastconv._kernels",
        sources=[os.path.join("fastconv", "_kernels.pyx")] + csources,
        include_dirs=["csrc", numpy.get_include()],
        depends=glob.glob(os.path.join("csrc", "*.h")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False,
                                               "initializedcheck": False, "cdivision": True}),
    cmdclass={"build_ext": BuildExt},
)
