# kiln.cmake — compile ONNX models with kiln at build time from a CMake project.
#
#   include(kiln.cmake)          # or: find_package(kiln) once kiln is installed
#   kiln_add_model(app model.onnx
#                  [NAME c_prefix]            # default: from the file name (digits.onnx: digits)
#                  [KILN_TARGET target]       # kiln's --target (cortex-m4, aarch64-linux, ...)
#                  [OPTIMIZE_FOR size|speed]  # default: the target's preference
#                  [WEIGHTS_SECTION section]  # ELF section for the weights (firmware flash)
#                  [SHAPES input:1x3x224x224 ...]
#                  [OPTIONS extra kiln arguments ...])
#
# adds a build step that runs `kiln compile` whenever the model or kiln changes, and gives the
# target the object (linked in) and the folder of NAME.h (#include "NAME.h"; it includes kiln.h,
# found beside it). In a cross build (CMAKE_TOOLCHAIN_FILE for Arm or RISC-V), kiln still runs
# on the build machine: it is found as a program of the host (KILN_EXECUTABLE, else `kiln` on
# PATH or in kiln's installed bin folder), and only its output is for the target. Without
# KILN_TARGET the object is for kiln's default, x86-64: pass the target that matches the
# toolchain.
include_guard(GLOBAL)

set(_KILN_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

if(NOT KILN_EXECUTABLE)
  # kiln is a build tool: search the host, never the cross toolchain's sysroot
  find_program(KILN_EXECUTABLE kiln
    HINTS "${_KILN_CMAKE_DIR}/../../../bin" "${_KILN_CMAKE_DIR}/../build"
    NO_CMAKE_FIND_ROOT_PATH)
endif()
if(NOT KILN_INCLUDE_DIR)
  find_path(KILN_INCLUDE_DIR kiln.h
    HINTS "${_KILN_CMAKE_DIR}/../../../include" "${_KILN_CMAKE_DIR}/../runtime-min"
    NO_CMAKE_FIND_ROOT_PATH)
endif()

function(kiln_add_model target model)
  cmake_parse_arguments(KM "" "NAME;KILN_TARGET;OPTIMIZE_FOR;WEIGHTS_SECTION"
                        "SHAPES;OPTIONS" ${ARGN})
  if(NOT KILN_EXECUTABLE)
    message(FATAL_ERROR "kiln_add_model: kiln not found (set KILN_EXECUTABLE)")
  endif()
  if(NOT KILN_INCLUDE_DIR)
    message(FATAL_ERROR "kiln_add_model: kiln.h not found (set KILN_INCLUDE_DIR)")
  endif()
  get_filename_component(model "${model}" ABSOLUTE)
  if(NOT KM_NAME)
    get_filename_component(KM_NAME "${model}" NAME_WE)
    string(MAKE_C_IDENTIFIER "${KM_NAME}" KM_NAME)
    string(TOLOWER "${KM_NAME}" KM_NAME)
  endif()
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/kiln/${target}")
  set(obj "${dir}/${KM_NAME}.o")
  set(hdr "${dir}/${KM_NAME}.h")
  set(args compile "${model}" -o "${obj}" --header "${hdr}" --name "${KM_NAME}")
  if(KM_KILN_TARGET)
    list(APPEND args --target "${KM_KILN_TARGET}")
  endif()
  if(KM_OPTIMIZE_FOR)
    list(APPEND args --optimize-for "${KM_OPTIMIZE_FOR}")
  endif()
  if(KM_WEIGHTS_SECTION)
    list(APPEND args --weights-section "${KM_WEIGHTS_SECTION}")
  endif()
  foreach(shape IN LISTS KM_SHAPES)
    list(APPEND args --shape "${shape}")
  endforeach()
  list(APPEND args ${KM_OPTIONS})
  add_custom_command(OUTPUT "${obj}" "${hdr}"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${dir}"
    COMMAND "${KILN_EXECUTABLE}" ${args}
    DEPENDS "${model}" "${KILN_EXECUTABLE}"
    COMMENT "kiln: ${KM_NAME} for ${KM_KILN_TARGET}"
    VERBATIM)
  set_source_files_properties("${obj}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  target_sources(${target} PRIVATE "${obj}" "${hdr}")
  target_include_directories(${target} PRIVATE "${dir}" "${KILN_INCLUDE_DIR}")
endfunction()
